"""The SGLang launcher. SGLang needs a GPU, so these tests put a FAKE `sglang` package on the path whose
`python -m sglang.launch_server` serves tests/fakes/fake_sglang.py (or dies, or hangs) instead."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backend.sglang_launcher import LaunchError, launch_sglang, serve_until_interrupted, stop_sglang
from tests.fakes import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVES = "from tests.fakes.fake_sglang import main\nmain()\n"
DIES = "import sys\nprint('RuntimeError: CUDA out of memory', flush=True)\nsys.exit(3)\n"
HANGS = "import time\nprint('loading weights...', flush=True)\ntime.sleep(600)\n"


def fake_sglang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launch_server: str) -> None:
    """Install a fake `sglang` package with the given launch_server module, for this test only."""
    package = tmp_path / "site" / "sglang"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""FAKE sglang for the launcher tests."""\n')
    (package / "launch_server.py").write_text(launch_server)
    monkeypatch.syspath_prepend(str(package.parent))  # what find_spec looks at
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(package.parent), str(ROOT)]))


def test_launch_returns_a_healthy_server_started_with_the_defaults_and_extra_flags(tmp_path, monkeypatch):
    fake_sglang(tmp_path, monkeypatch, SERVES)
    port, log = free_port(), tmp_path / "sglang.log"
    process = launch_sglang("/models/m", port=port, extra_args=["--mem-fraction-static", "0.3"], log_path=log)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health_generate").status_code == 200
        assert "ignoring ['--enable-cache-report', '--mem-fraction-static', '0.3']" in log.read_text()
    finally:
        assert stop_sglang(process) is not None
    assert process.poll() is not None


def test_a_server_that_dies_is_reported_with_the_end_of_its_log(tmp_path, monkeypatch):
    fake_sglang(tmp_path, monkeypatch, DIES)
    with pytest.raises(LaunchError, match=r"exited with code 3(.|\n)*CUDA out of memory"):
        launch_sglang("/models/m", port=free_port(), log_path=tmp_path / "sglang.log")


def test_a_server_that_never_gets_healthy_is_stopped_after_the_wait(tmp_path, monkeypatch):
    fake_sglang(tmp_path, monkeypatch, HANGS)
    with pytest.raises(LaunchError, match=r"not healthy after 1\.5 s(.|\n)*loading weights"):
        launch_sglang("/models/m", port=free_port(), wait_s=1.5, log_path=tmp_path / "sglang.log")


def test_a_missing_sglang_says_how_to_install_it():
    if importlib.util.find_spec("sglang") is not None:
        pytest.skip("SGLang is installed here")
    with pytest.raises(LaunchError, match=r"pip install 'promptfold\[sglang\]'"):
        launch_sglang("/models/m", port=free_port())


def test_a_taken_port_and_flags_the_launcher_owns_are_refused(tmp_path, monkeypatch):
    fake_sglang(tmp_path, monkeypatch, SERVES)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(LaunchError, match="already in use"):
            launch_sglang("/models/m", port=busy.getsockname()[1])
    with pytest.raises(LaunchError, match="--port"):
        launch_sglang("/models/m", port=free_port(), extra_args=["--port=1234"])


def test_serving_ends_with_the_servers_own_exit_code():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(5)"])
    assert serve_until_interrupted(process) == 5
