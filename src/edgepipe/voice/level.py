"""The guest, not the room: how loud the guest is, how loud the room was, and the level a frame
must reach to count as the guest's speech.

A television talking, or someone across the room, is speech to the VAD: a listening would
never fall silent. Two levels tell them apart from the guest who just said the wake phrase:

* the **guest's**: the 90th percentile of the 10 ms frame power over the second before the
  wake detection (the wake phrase's loud frames);
* the **room's**: the 75th percentile of the 300 ms mean power over the three seconds before
  that (the television, the fan; in a quiet room, next to nothing).

A frame counts as the guest's speech while the mean power of the last 300 ms stays above the
**floor**: ``room_margin_db`` above the room's level, and never lower than ``level_gate_db``
below the guest's (nor higher than :data:`MIN_GATE_DB` below it). In a quiet room the floor is
far down and only the VAD decides (the end of a sentence is often 10-15 dB softer than the wake
phrase); with the television on it sits just above the television.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

WINDOW_FRAMES = 30
"""The gate compares the mean power of this many 10 ms frames (300 ms) with the floor."""
GUEST_FRAMES = 100
"""The guest's level is read from this many frames up to the detection (the wake phrase)."""
ROOM_FRAMES = 300
"""The room's level is read from this many frames before those."""
MIN_GATE_DB = 6.0
"""The floor stays at least this far below the guest's level, however loud the room."""
DUCK_GAIN = 0.1
"""What :func:`duck` leaves of the frames the gate does not pass (-20 dB)."""


def frame_power(frame: bytes) -> float:
    """Mean power of a 16-bit PCM frame, full scale = 1."""
    samples = np.frombuffer(frame, dtype=np.int16).astype(np.float64) / 32768.0
    return float(np.mean(samples * samples)) if samples.size else 0.0


def _db(power: float) -> float | None:
    return 10.0 * float(np.log10(power)) if power > 0 else None


class RoomLevels:
    """The power of the frames heard while waiting for a wake (the last four seconds)."""

    def __init__(self) -> None:
        self._powers: deque[float] = deque(maxlen=ROOM_FRAMES + GUEST_FRAMES)

    def clear(self) -> None:
        self._powers.clear()

    def hear(self, frame: bytes) -> None:
        self._powers.append(frame_power(frame))

    def guest_db(self) -> float | None:
        """The wake phrase's level (None: silence)."""
        guest = list(self._powers)[-GUEST_FRAMES:]
        return _db(float(np.percentile(guest, 90))) if guest else None

    def room_db(self) -> float | None:
        """The room's level before the wake phrase (None: too little heard, or silence)."""
        before = np.asarray(list(self._powers)[:-GUEST_FRAMES], dtype=np.float64)
        if before.size < WINDOW_FRAMES:
            return None
        windows = np.convolve(before, np.ones(WINDOW_FRAMES) / WINDOW_FRAMES, mode="valid")
        return _db(float(np.percentile(windows, 75)))

    def floor_db(self, gate_db: float, margin_db: float) -> float | None:
        """The level the guest's speech must reach (None: no wake phrase to compare with)."""
        guest = self.guest_db()
        if guest is None:
            return None
        floor = guest - max(gate_db, MIN_GATE_DB)
        room = self.room_db()
        if room is not None:
            floor = max(floor, room + margin_db)
        return min(floor, guest - MIN_GATE_DB)


class LevelGate:
    """Whether the mean power of the last 300 ms reaches ``floor_db``."""

    def __init__(self, floor_db: float) -> None:
        self.floor = 10.0 ** (floor_db / 10.0)
        self._window: deque[float] = deque(maxlen=WINDOW_FRAMES)
        self._sum = 0.0

    def feed(self, frame: bytes) -> bool:
        if len(self._window) == self._window.maxlen:
            self._sum -= self._window[0]
        power = frame_power(frame)
        self._window.append(power)
        self._sum = max(0.0, self._sum + power)
        return bool(self._sum / len(self._window) >= self.floor)


def duck(frames: list[bytes], floor_db: float) -> npt.NDArray[np.int16]:
    """The frames as one array, those the gate does not pass turned down by 20 dB: the wake
    check hears the phrase, not the television around it."""
    gate = LevelGate(floor_db)
    out: list[npt.NDArray[np.int16]] = []
    for frame in frames:
        samples = np.frombuffer(frame, dtype=np.int16)
        if not gate.feed(frame):
            samples = (samples.astype(np.float32) * DUCK_GAIN).astype(np.int16)
        out.append(samples)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)
