"""moto's server on 127.0.0.1: the local farm's AWS API (EC2, SSM, S3, Auto Scaling, CloudWatch)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from farmhand.core.errors import FarmError
from farmhand.core.local.process import running_pid, terminate

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """A moto server whose pid, port and log live under `<state>/moto/`."""

    def __init__(self, state_dir: Path, env: dict[str, str] | None = None) -> None:
        self.dir = state_dir / "moto"
        self.env = env  # extra environment for the server (e.g. moto's own settings)

    @property
    def pidfile(self) -> Path:
        return self.dir / "pid"

    @property
    def portfile(self) -> Path:
        return self.dir / "port"

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.portfile.read_text().strip()}"

    def pid(self) -> int | None:
        return running_pid(self.pidfile)

    def healthy(self) -> bool:
        """The recorded process lives and answers HTTP on its port."""
        if self.pid() is None or not self.portfile.exists():
            return False
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except (urllib.error.URLError, OSError):
            return False

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold `<state>/moto/lock`: two `farm local up` at once (two farms) start one server, and
        a `farm local down` decides to stop it while no `up` can be starting to use it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / "lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def ensure(self, timeout: float = 30.0) -> str:
        """Start the server unless it runs already; return its endpoint URL."""
        with self.locked():
            return self._ensure(timeout)

    def _ensure(self, timeout: float) -> str:
        # A recorded server that lives is waited for even if slow to answer (a busy machine):
        # replacing it would pull the AWS API from under every farm command using it, with the
        # records they made.
        if self._answers_within(timeout):
            return self.endpoint
        self.stop()
        try:
            import moto.server  # noqa: F401  (only to check it is installed)
        except ImportError:
            raise FarmError("the local farm needs moto: pip install -e '.[dev]' (make deps)") from None
        self.dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.portfile.write_text(str(port))
        log = (self.dir / "moto.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(self.env or {})},
        )
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise FarmError(f"moto exited at start: see {self.dir / 'moto.log'}")
            if self.healthy():
                return self.endpoint
            time.sleep(0.2)
        raise FarmError(f"moto did not answer on port {port} within {timeout:.0f}s")

    def _answers_within(self, timeout: float) -> bool:
        """The recorded server runs and answers before TIMEOUT (False at once if none runs, or once
        it dies or has stayed silent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                return False
            if self.healthy():
                return True
            time.sleep(0.5)
        return False

    def stop(self) -> None:
        terminate(self.pidfile)

    def stop_if_unused(self, in_use: Callable[[], bool]) -> bool:
        """Stop the server unless IN_USE() says a farm needs it, asked and acted on under the lock
        (a `farm local up` of another farm, which records its farm before `ensure`, cannot slip
        between); True if it stopped."""
        with self.locked():
            if in_use():
                return False
            self.stop()
            return True
