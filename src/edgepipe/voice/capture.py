"""Microphone frames: captured on the audio device's thread, handed to the listening in order.

The device delivers a 10 ms frame every 10 ms whatever the listening does; while a turn is
decided, answered and spoken the frames wait in a :class:`FrameQueue`, and the listening works
them off afterwards (it runs faster than real time). The queue is bounded: when the listening
falls more than :data:`MAX_QUEUED_FRAMES` behind, the oldest frames are dropped (the newest
audio is what the guest is saying now) and counted, and ``edgepipe listen`` warns.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from edgepipe.core.errors import EdgepipeError
from edgepipe.voice.audio import FRAME_BYTES, FRAME_MS, SAMPLE_RATE

log = logging.getLogger(__name__)

MAX_QUEUED_FRAMES = 1000
"""10 s of audio: longer than any turn takes to decide, answer and start speaking (the voice
budget is 2.5 s, the open path ~1.5 s); beyond it the listening is not catching up."""


class FrameQueue:
    """A bounded first-in, first-out queue of frames that drops the oldest when full. One
    producer (the device's callback, which must never block) and one consumer."""

    def __init__(self, maxsize: int = MAX_QUEUED_FRAMES) -> None:
        if maxsize < 1:
            raise ValueError("a frame queue holds at least one frame")
        self.maxsize = maxsize
        self._frames: collections.deque[bytes] = collections.deque()
        self._ready = threading.Condition()
        self.dropped = 0
        """Frames dropped because the queue was full."""
        self._reported = 0

    def put(self, frame: bytes) -> None:
        """Add ``frame``; returns at once (dropping the oldest frame when full)."""
        with self._ready:
            if len(self._frames) >= self.maxsize:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self._ready.notify()

    def get(self, timeout_s: float | None = None) -> bytes | None:
        """The oldest frame, waiting for one up to ``timeout_s`` (None: for ever); None when
        none came."""
        with self._ready:
            if not self._ready.wait_for(lambda: bool(self._frames), timeout_s):
                return None
            frame = self._frames.popleft()
            dropped = self.dropped
        if dropped > self._reported:
            log.warning(
                "the listening fell %.0f s behind the microphone: %d frames dropped so far",
                self.maxsize * FRAME_MS / 1000,
                dropped,
            )
            self._reported = dropped
        return frame

    def __len__(self) -> int:
        with self._ready:
            return len(self._frames)


def microphone_frames(
    queue: FrameQueue,
    gate: Callable[[bytes], bytes] | None = None,
    *,
    on_open: Callable[[], None] | None = None,
) -> Iterator[bytes]:
    """10 ms frames from the default input device (sounddevice; an optional extra), through
    ``queue``. ``gate``: applied to each frame as it is captured (the speaker mutes the
    microphone while a reply plays). ``on_open``: called once the device is listening."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise EdgepipeError(
            f"--mic needs sounddevice and PortAudio ({exc}); pip install sounddevice",
            code="mic_unavailable",
        ) from exc

    def callback(data: Any, _frames: int, _time: Any, _status: Any) -> None:
        frame = bytes(data)
        queue.put(gate(frame) if gate is not None else frame)

    try:
        stream = sd.RawInputStream(
            samplerate=SAMPLE_RATE,
            channels=1,
            dtype="int16",
            blocksize=FRAME_BYTES // 2,
            callback=callback,
        )
    except Exception as exc:
        raise EdgepipeError(f"cannot open the microphone: {exc}", code="mic_unavailable") from exc
    with stream:
        if on_open is not None:
            on_open()
        while True:
            frame = queue.get()
            if frame is not None:
                yield frame
