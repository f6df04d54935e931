"""onnxruntime sessions on the CPU with a fixed thread budget (the encoder, Silero VAD, Piper)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cpu_session(model: str | Path | bytes, *, threads: int = 1) -> Any:
    """An ``InferenceSession`` on the CPU with ``threads`` intra-op threads and one inter-op
    thread (graph optimisations at onnxruntime's default, all)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
