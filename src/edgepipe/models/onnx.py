"""onnxruntime sessions on the CPU with a fixed thread budget (the encoder, Silero VAD, Piper)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cpu_session(model: str | Path | bytes, *, threads: int | None = 1, spin: bool = True) -> Any:
    """An ``InferenceSession`` on the CPU with ``threads`` intra-op threads (``None``:
    onnxruntime's default, one per physical core) and one inter-op thread (graph optimisations
    at onnxruntime's default, all). ``spin=False``: the threads sleep as soon as a run ends
    instead of spinning, for sessions that run in turn with others on the same cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
