"""Start and stop a real ``transformers serve`` process on a loopback port (tests and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TransformersServe:
    """``transformers serve FOLDER`` pinned to one model folder, on 127.0.0.1 only, offline.

    The model is given on the command line (so it is loaded before ``/health`` answers and
    requests must name it exactly: its folder path). Output goes to ``log_path``.
    """

    def __init__(self, folder: str | Path, log_path: Path, extra_args: tuple[str, ...] = (),
                 port: int | None = None, threads: int | None = None) -> None:
        self.folder = str(folder)
        self.log_path = log_path
        self.extra_args = extra_args
        self.port = port or free_port()
        self.threads = threads
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return self.folder

    @property
    def spec(self) -> str:
        """The lmscope model spec for this server's model."""
        return f"openai:{self.model}@{self.url}"

    def start(self, timeout_s: float = 120.0) -> None:
        """Launch the server and wait for ``GET /health`` to answer 200.

        Raises:
            RuntimeError: the process exited, or was not ready within ``timeout_s`` (log tail included).
        """
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        command = [sys.executable, "-c", "import sys; from transformers.cli.transformers import main; sys.exit(main())",
                   "serve", self.folder, "--host", "127.0.0.1", "--port", str(self.port), *self.extra_args]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"transformers serve was not ready within {timeout_s:g} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """Terminate the server (SIGTERM), killing it if it does not exit within 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
