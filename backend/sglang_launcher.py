"""Start `python -m sglang.launch_server` with promptfold's defaults and wait until it can generate.

    from backend.sglang_launcher import launch_sglang, serve_until_interrupted
    process = launch_sglang("/models/SmolLM2-135M-Instruct", port=30000)   # returns once healthy
    serve_until_interrupted(process)                                        # Ctrl-C stops the server

SGLang itself is never imported here (it needs a GPU and pulls in CUDA); it runs in a child process in
its own process group, so stopping it also stops its scheduler and detokenizer children.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

# Flags promptfold wants unless the caller's extra args say otherwise: cached_tokens in OpenAI usage.
DEFAULT_FLAGS: tuple[str, ...] = ("--enable-cache-report",)
# Flags the launcher owns because it must know them to reach the server.
_OWN_FLAGS = ("--model-path", "--model", "--host", "--port")
_POLL_S = 1.0


class LaunchError(RuntimeError):
    """SGLang is missing, exited, or did not become healthy in time; the message says which and why."""


def launch_sglang(
    model: str,
    *,
    port: int = 30000,
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
    wait_s: float = 600,
    python: str = sys.executable,
    log_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start an SGLang server for `model` (a local HF folder, or a hub id where the machine has access)
    and return its process once `GET /health_generate` (or `/health`) answers 200.

    `extra_args` go to `sglang.launch_server` after the defaults (`--enable-cache-report`); repeating a
    default flag there is fine. The log goes to `log_path` (default: sglang-PORT.log in the temp folder).
    Raises LaunchError if SGLang is not installed, the port is taken, the server exits, or `wait_s`
    seconds pass; the message then holds the last lines of the log.
    """
    _check_installed(python)
    _check_own_flags(extra_args)
    if _port_in_use(host, port):
        raise LaunchError(f"port {port} on {host} is already in use; pick another with --port")
    log_path = log_path or Path(tempfile.gettempdir()) / f"sglang-{port}.log"
    command = [
        python,
        "-m",
        "sglang.launch_server",
        "--model-path",
        model,
        "--host",
        host,
        "--port",
        str(port),
    ]
    command += [flag for flag in DEFAULT_FLAGS if flag not in extra_args] + list(extra_args)
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(process, f"http://{_client_host(host)}:{port}", wait_s, log_path)
    except BaseException:
        stop_sglang(process)
        raise
    return process


def stop_sglang(process: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
    """Stop the server and its children (SIGTERM, then SIGKILL after `timeout_s` seconds); exit code."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
    return int(process.returncode)


def serve_until_interrupted(process: subprocess.Popen[bytes]) -> int:
    """Wait on the server until it exits or Ctrl-C; then stop it. Returns the exit code for the CLI
    (0 after Ctrl-C, the server's own code if it exited by itself)."""
    try:
        return int(process.wait())
    except KeyboardInterrupt:
        stop_sglang(process)
        return 0


def log_tail(log_path: Path, lines: int = 30) -> str:
    """The last `lines` lines of the server log ('' if there is none)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _check_installed(python: str) -> None:
    hint = "install it on a GPU machine with: pip install 'promptfold[sglang]'"
    if python == sys.executable:
        if importlib.util.find_spec("sglang") is None:
            raise LaunchError(f"SGLang is not installed in this Python ({python}); {hint}")
        return
    probe = [python, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('sglang') is None)"]
    try:
        found = subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LaunchError(f"cannot run the Python interpreter {python}: {exc}") from exc
    if not found:
        raise LaunchError(f"SGLang is not installed for {python}; {hint}")


def _check_own_flags(extra_args: Sequence[str]) -> None:
    for arg in extra_args:
        if arg.split("=", 1)[0] in _OWN_FLAGS:
            raise LaunchError(
                f"pass {arg.split('=', 1)[0]} through launch_sglang's own arguments, not extra_args"
            )


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)


def _port_in_use(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((_client_host(host).strip("[]"), port), 0.5):
        return True
    return False


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, wait_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + wait_s
    path = "/health_generate"  # generates one token: the model really runs, not only the HTTP server
    while True:
        code = process.poll()
        if code is not None:
            raise LaunchError(
                f"SGLang exited with code {code} before it was healthy; its log ({log_path}) ends:\n"
                + log_tail(log_path)
            )
        try:
            status = httpx.get(base_url + path, timeout=30).status_code
        except httpx.HTTPError:
            status = None  # not listening yet
        if status == 200:
            return
        if status == 404 and path != "/health":
            path = "/health"  # an SGLang without /health_generate
            continue
        if time.monotonic() >= deadline:
            raise LaunchError(
                f"SGLang was not healthy after {wait_s:g} s at {base_url}; its log ({log_path}) ends:\n"
                + log_tail(log_path)
            )
        time.sleep(_POLL_S)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # start_new_session made the server the leader of its own group
