"""The local farm's own background processes (moto, the S3 TLS front): found by a pid file, stopped
with SIGTERM."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def running_pid(pidfile: Path) -> int | None:
    """The pid PIDFILE records, if that process lives."""
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def terminate(pidfile: Path, wait: float = 5.0) -> None:
    """SIGTERM the process PIDFILE records, wait up to WAIT seconds for it to go, forget the file."""
    pid = running_pid(pidfile)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
