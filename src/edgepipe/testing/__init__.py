"""Test doubles for the cloud tier: a real OpenAI-compatible server behind a fault-injecting proxy.

* :class:`~edgepipe.testing.faultproxy.FaultProxy` is a small HTTP/1.1 reverse proxy that can
  delay, fail, corrupt, reset, stall or slow down requests on demand, or pick such faults at
  random with given probabilities.
* :class:`~edgepipe.testing.cloud.StandInCloud` starts ``llama_cpp.server`` with a small GGUF
  chat model on loopback and puts a :class:`FaultProxy` in front of it
  (``python -m edgepipe.testing.cloud serve`` runs it from the command line).

Neither is imported here eagerly (``cloud`` needs ``httpx`` and spawns processes); import the
submodules directly.
"""

from __future__ import annotations
