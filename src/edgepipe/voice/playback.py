"""Playing replies on the output device as they are synthesized, and listening half-duplex.

:class:`Speaker` takes the reply's pieces as the synthesizer yields them (the session's
``reply_sink``) and plays them from a thread of its own, so the next piece is synthesized while
the first is playing. A device without echo cancellation hears its own replies: while a reply
plays, and for ``tail_s`` after it, :meth:`Speaker.gate` turns microphone frames into silence,
so the assistant never takes its own voice for a guest's (half-duplex, as on a walkie-talkie).
Silence rather than dropped frames keeps the stream's clock, which the endpointer's timeouts
count in.

The queue of pieces waiting to play is bounded (:data:`MAX_QUEUED_PIECES`): a device that plays
slower than real time, or stalls, must not let replies pile up without end. A piece that finds
the queue full is not played, and :attr:`Speaker.dropped` counts it (``edgepipe listen`` warns).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgepipe.core.errors import EdgepipeError

log = logging.getLogger(__name__)


class SpeakerError(EdgepipeError):
    default_code = "speaker_unavailable"


class OutputStream(Protocol):
    """What :class:`Speaker` needs of an output stream (sounddevice's ``OutputStream``)."""

    def write(self, data: npt.NDArray[np.float32]) -> Any: ...

    def close(self) -> None: ...


def sounddevice_output(rate: int) -> OutputStream:
    """A started float32 mono output stream on the default device at ``rate``."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise SpeakerError(
            f"playing replies needs sounddevice and PortAudio ({exc}); pip install sounddevice"
        ) from exc
    try:
        stream = sd.OutputStream(samplerate=rate, channels=1, dtype="float32")
        stream.start()
    except Exception as exc:
        raise SpeakerError(f"cannot open the speaker: {exc}") from exc
    return stream  # type: ignore[no-any-return]


_STOP = object()

MAX_QUEUED_PIECES = 64
"""Reply pieces waiting to play, at most. A reply is 2-10 pieces (the first ~0.4 s, later ones
up to ~3 s of audio), so this is minutes of speech: only a device that stopped playing fills it."""


class Speaker:
    """Plays float32 mono pieces in order on streams from ``open_stream(rate)`` (one stream
    while the rate stays the same). ``clock``: seconds, monotonic (tests pass their own)."""

    def __init__(
        self,
        open_stream: Callable[[int], OutputStream] = sounddevice_output,
        *,
        tail_s: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
        max_queued: int = MAX_QUEUED_PIECES,
    ) -> None:
        self._open = open_stream
        self.tail_s = tail_s
        self._clock = clock
        # a stop or drain marker always finds room: the bound is on audio
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queued + 2)
        self._max_queued = max_queued
        self._queued = 0
        self.dropped = 0
        """Pieces not played because the queue was full."""
        self._lock = threading.Lock()
        self._quiet_at = 0.0
        self._stream: OutputStream | None = None
        self._rate = 0
        self.error: EdgepipeError | None = None
        """The first failure of the output device; playing stops, listening goes on."""
        self._thread = threading.Thread(target=self._run, name="edgepipe-speaker", daemon=True)
        self._thread.start()

    def play(self, piece: npt.NDArray[np.float32], rate: int) -> None:
        """Queue ``piece`` after what is already queued; returns at once. With the queue full
        the piece is dropped (and counted in :attr:`dropped`)."""
        if self.error is not None or len(piece) == 0:
            return
        item = (np.asarray(piece, dtype=np.float32).reshape(-1), rate)
        with self._lock:
            try:
                if self._queued >= self._max_queued:
                    raise queue.Full
                self._queue.put_nowait(item)
            except queue.Full:
                self.dropped += 1
                if self.dropped == 1:
                    log.warning(
                        "the speaker is %d pieces behind: reply audio is dropped", self._queued
                    )
                return
            self._queued += 1
            start = max(self._clock(), self._quiet_at)
            self._quiet_at = start + len(piece) / rate

    def busy(self) -> bool:
        """Whether a reply is playing, or ended less than ``tail_s`` ago (its echo)."""
        with self._lock:
            quiet_at = self._quiet_at
        return self._clock() < quiet_at + self.tail_s

    def gate(self, frame: bytes) -> bytes:
        """``frame`` (microphone PCM), or silence of its length while :meth:`busy`."""
        return bytes(len(frame)) if self.busy() else frame

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait until everything queued has been handed to the device."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout_s)
        except queue.Full:  # more than one drain waiting on a stalled device
            return
        done.wait(timeout_s)

    def close(self) -> None:
        try:
            self._queue.put(_STOP, timeout=5)
        except queue.Full:
            log.warning("the speaker did not stop: its device is stalled")
        self._thread.join(timeout=5)
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            piece, rate = item
            with self._lock:
                self._queued -= 1
            if self.error is not None:
                continue
            try:
                if self._stream is None or rate != self._rate:
                    if self._stream is not None:
                        self._stream.close()
                    self._stream, self._rate = None, 0
                    self._stream, self._rate = self._open(rate), rate
                self._stream.write(piece)  # paced by the device
            except Exception as exc:
                self.error = (
                    exc if isinstance(exc, EdgepipeError) else SpeakerError(f"speaker: {exc}")
                )
                log.warning("cannot play the reply (%s); replies are not spoken", self.error)
                with self._lock:
                    self._quiet_at = 0.0
