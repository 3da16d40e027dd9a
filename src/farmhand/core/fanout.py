"""One command on many hosts at once (`farm ssh --all`): every output line prefixed with its host's
name, as `farm logs` tags its lines; stdout stays stdout and stderr stderr."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from farmhand.core import ssh
from farmhand.core.errors import FarmError


class _Printer:
    """Writes whole lines from many threads, each prefixed, never interleaved within a line."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def pump(self, prefix: bytes, source: BinaryIO, sink: BinaryIO) -> None:
        for line in iter(source.readline, b""):
            with self.lock:
                sink.write(prefix + line + (b"" if line.endswith(b"\n") else b"\n"))
                sink.flush()


def run_on_each(
    conns: Sequence[ssh.Connection],
    remote: str,
    env: Mapping[str, str],
    stdout: BinaryIO,
    stderr: BinaryIO,
) -> dict[str, int]:
    """REMOTE (a shell command line) on every host at once; each host's exit status, by name."""
    printer = _Printer()

    def one(conn: ssh.Connection) -> int:
        argv = [*ssh.ssh_argv(conn, tty=False, batch=True), "--", remote]
        prefix = f"{conn.name}: ".encode()
        try:
            proc = subprocess.Popen(
                argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except FileNotFoundError:
            raise FarmError("ssh is not installed: install openssh-client") from None
        assert proc.stdout is not None and proc.stderr is not None
        errors = threading.Thread(target=printer.pump, args=(prefix, proc.stderr, stderr))
        errors.start()
        printer.pump(prefix, proc.stdout, stdout)
        errors.join()
        return proc.wait()

    with ThreadPoolExecutor(max_workers=max(1, len(conns))) as pool:
        codes = list(pool.map(one, conns))
    return {conn.name: code for conn, code in zip(conns, codes, strict=True)}
