"""The link state machine: hysteresis both ways, rate-limited probes, listeners."""

from __future__ import annotations

from edgepipe.cloud.connectivity import Connectivity, Link


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_one_failure_degrades_and_several_go_offline() -> None:
    link = Connectivity(failures_to_offline=3)
    link.record_failure()
    assert link.state is Link.DEGRADED
    link.record_failure()
    assert link.state is Link.DEGRADED
    link.record_failure()
    assert link.state is Link.OFFLINE


def test_a_success_in_between_resets_the_failure_count() -> None:
    link = Connectivity(failures_to_offline=3)
    for _ in range(2):
        link.record_failure()
    link.record_success()
    link.record_failure()
    link.record_failure()
    assert link.state is Link.DEGRADED


def test_recovery_needs_a_probe_then_consecutive_successes() -> None:
    clock = Clock()
    answers = [False, True]
    link = Connectivity(
        lambda: answers.pop(0),
        clock=clock,
        probe_interval_s=10,
        successes_to_online=2,
        initial=Link.OFFLINE,
    )
    assert link.maybe_probe() is Link.OFFLINE  # probe fails
    clock.t = 5
    assert link.maybe_probe() is Link.OFFLINE  # rate-limited: no probe yet
    assert answers == [True]
    clock.t = 11
    assert link.maybe_probe() is Link.DEGRADED  # one good probe is not enough for online
    link.record_success()
    assert link.state is Link.DEGRADED
    link.record_success()
    assert link.state is Link.ONLINE


def test_failed_probe_while_degraded_goes_offline() -> None:
    link = Connectivity(lambda: False, probe_interval_s=0)
    link.record_failure()
    assert link.maybe_probe() is Link.OFFLINE


def test_online_does_not_probe_and_listeners_see_every_transition() -> None:
    probes: list[int] = []
    seen: list[tuple[Link, Link]] = []
    link = Connectivity(lambda: probes.append(1) or True, probe_interval_s=0)
    link.on_change(lambda old, new: seen.append((old, new)))
    assert link.maybe_probe() is Link.ONLINE and probes == []
    link.force(Link.OFFLINE)
    link.maybe_probe()
    link.record_success()
    link.record_success()
    assert seen == [
        (Link.ONLINE, Link.OFFLINE),
        (Link.OFFLINE, Link.DEGRADED),
        (Link.DEGRADED, Link.ONLINE),
    ]
