"""The microphone's frame queue: bounded, oldest dropped first, drops counted."""

from __future__ import annotations

import logging
import threading

import pytest

from edgepipe.voice.capture import MAX_QUEUED_FRAMES, FrameQueue


def frame(n: int) -> bytes:
    return n.to_bytes(2, "little") * 160


def test_frames_come_out_in_order() -> None:
    frames = FrameQueue(maxsize=10)
    for n in range(5):
        frames.put(frame(n))
    assert len(frames) == 5
    assert [frames.get() for _ in range(5)] == [frame(n) for n in range(5)]
    assert frames.get(timeout_s=0.01) is None and frames.dropped == 0


def test_a_full_queue_drops_the_oldest_frames_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert MAX_QUEUED_FRAMES * 10 >= 10_000  # 10 s of audio: longer than a turn takes
    frames = FrameQueue(maxsize=3)
    for n in range(8):  # the listening is busy with a turn: nobody reads
        frames.put(frame(n))
    assert len(frames) == 3 and frames.dropped == 5
    with caplog.at_level(logging.WARNING):
        got = [frames.get() for _ in range(3)]
    assert got == [frame(5), frame(6), frame(7)]  # what the guest says now
    assert "5 frames dropped" in caplog.text
    with pytest.raises(ValueError):
        FrameQueue(maxsize=0)


def test_a_reader_waits_for_the_next_frame() -> None:
    frames = FrameQueue()
    got: list[bytes | None] = []
    reader = threading.Thread(target=lambda: got.append(frames.get(timeout_s=5)))
    reader.start()
    frames.put(frame(1))
    reader.join(timeout=5)
    assert got == [frame(1)]
