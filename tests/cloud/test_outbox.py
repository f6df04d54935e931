"""The durable outbox: queued requests survive restarts and are delivered once, in order."""

from __future__ import annotations

from pathlib import Path

from edgepipe.cloud.outbox import Deferred, Outbox


def test_items_survive_a_restart_and_are_delivered_oldest_first(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    first = box.enqueue(intent="book_table", text="table for 2 at 8", slots={"count": 2})
    box.enqueue(intent="book_table", text="table for 4 tomorrow", slots={})
    box.close()

    box = Outbox(tmp_path / "o.db")
    pending = box.items()
    assert pending[0].id == first and pending[0].slots == {"count": 2}
    sent: list[str] = []

    def send(item: Deferred) -> str:
        sent.append(item.text)
        return f"booked: {item.text}"

    assert box.deliver(send) == (2, 0)
    assert sent == ["table for 2 at 8", "table for 4 tomorrow"]
    assert box.items() == [] and len(box.items("delivered")) == 2
    assert box.deliver(send) == (0, 0)  # nothing is sent twice


def test_a_failed_delivery_stays_pending_until_the_attempt_limit(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_attempts=2)
    box.enqueue(intent="book_table", text="x", slots={})

    def fail(item: Deferred) -> str:
        raise ConnectionError("still down")

    assert box.deliver(fail) == (0, 1)
    (item,) = box.items()
    assert item.attempts == 1 and "still down" in (item.result or "")
    assert box.deliver(fail) == (0, 1)
    assert box.items() == [] and len(box.items("failed")) == 1
