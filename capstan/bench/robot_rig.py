"""The parts of a whole robot path on one machine, each on loopback: a Franka robot agent in its own
process (`capstan robot-agent --backend franka --franka-host H`, on franky-sim) and a Capstan
service in this process (uvicorn in a thread), for `capstan bench robot` and the full-path tests.

    with FrankySim(blocks) as sim, AgentProcess(sim.hostname) as agent, ProxyProcess(agent.port) as line:
        with ServiceServer(robots=f"franka={line.url}") as service:
            httpx.post(f"{service.url}/v1/sessions", json={"robot": "franka"})
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx

AGENT_START_S = 90.0  # importing the stack and connecting franky takes a few seconds, more on a busy machine
SERVER_START_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AgentProcess:
    """`capstan robot-agent --backend franka --franka-host HOST` on a free loopback port, with `args`
    appended (e.g. ["--heartbeat-ms", "250"]); stopped with SIGINT like an operator's Ctrl-C."""

    def __init__(self, franka_host: str, args: list[str] | None = None):
        self.franka_host = franka_host
        self.args = list(args or [])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None
        self._log: IO[str] | None = None

    def start(self) -> AgentProcess:
        command = [sys.executable, "-m", "capstan.service.cli", "robot-agent", "--backend", "franka"]
        command += ["--franka-host", self.franka_host, "--port", str(self.port), *self.args]
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the child
        self._proc = subprocess.Popen(  # noqa: S603 - our own CLI, run by this interpreter
            command, stdout=self._log, stderr=subprocess.STDOUT, env=environment_with_source()
        )
        deadline = time.monotonic() + AGENT_START_S
        while True:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                output = self.output()
                self.close()
                raise RuntimeError(f"the robot agent did not start; its output:\n{output}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v1/robot", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)

    def output(self) -> str:
        if self._log is None:
            return ""
        with contextlib.suppress(ValueError, OSError):
            self._log.seek(0)
            return self._log.read()[-3000:]
        return ""

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServiceServer:
    """A Capstan service (Settings from `settings`, never from this process's CAPSTAN_* variables)
    served by uvicorn on a free loopback port, in a thread. `llm` defaults to a scripted provider
    with no replies: programs need no model, and a command then fails rather than loading one."""

    def __init__(self, *, llm: Any = None, data_dir: str | Path | None = None, **settings: Any):
        self.llm, self.settings = llm, settings
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.data_dir = Path(data_dir) if data_dir else None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> ServiceServer:
        import uvicorn

        from capstan.llm.scripted import ScriptedProvider
        from capstan.service.api import create_app
        from capstan.service.config import Settings
        from capstan.service.service import Service

        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="capstan-rig-")
            self.data_dir = Path(self._tmp.name)
        self.settings.setdefault("media", False)
        settings = Settings.from_env({}, data_dir=self.data_dir, **self.settings)
        self.service = Service(settings, llm=self.llm or ScriptedProvider([]))
        config = uvicorn.Config(
            create_app(self.service), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + SERVER_START_S
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.close()
                raise RuntimeError("the service did not start on loopback")
            time.sleep(0.05)
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(15)
            self._server = None
        if self.service is not None:
            self.service.close()
            self.service = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ServiceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def environment_with_source() -> dict[str, str]:
    """This process's environment, with the directory capstan is imported from first on PYTHONPATH,
    so that a child runs the same code (a worktree's, not an installed copy)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, path]))}
