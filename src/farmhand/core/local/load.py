"""A bounded HTTP load on a local farm's app (wrk, from Debian), for tests and benchmarks.

The load only ever targets the loopback address where `farm local up` publishes the load
balancer, runs for at most `max_seconds`, and stops by itself.

By default every connection sends its next request as soon as the last one is answered (what a
benchmark wants). With `pace_ms`, each connection waits that long between requests (wrk's Lua
`delay()`): a steady stream, as real traffic is, that proves nothing is dropped without spending
the machine's CPU on the flood (the whole-farm tests share two cores with everything else).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from farmhand.core.errors import FarmError
from farmhand.core.local.podman import require

_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(\w+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
# wrk's script for a paced load: each thread reads the pause from the arguments after `--`.
PACED_SCRIPT = Path(__file__).with_name("paced.lua")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    non_2xx: int
    socket_errors: int
    seconds: float
    output: str

    @property
    def failed(self) -> int:
        return self.non_2xx + self.socket_errors


class Load:
    """`with Load(url) as load: ...; result = load.result`: wrk runs for as long as the block does."""

    def __init__(
        self,
        url: str,
        connections: int = 8,
        threads: int = 2,
        max_seconds: int = 600,
        pace_ms: int | None = None,
    ) -> None:
        host = urlparse(url).hostname or ""
        if not host.startswith("127.") and host != "localhost":
            raise FarmError(f"load is only sent to the loopback address, not {host!r}")
        if pace_ms is not None and pace_ms <= 0:
            raise FarmError(f"pace_ms must be a positive number of milliseconds, not {pace_ms}")
        self.url = url
        self.cmd = [
            require("wrk", "run `make deps` to install it"),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max_seconds}s",
            "--timeout",
            "10s",
            url,
            *(["--script", str(PACED_SCRIPT), "--", str(pace_ms)] if pace_ms is not None else []),
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.started = 0.0
        self.result: LoadResult | None = None

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1)  # let it reach full load before the block acts
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        time.sleep(1)
        self.proc.send_signal(signal.SIGINT)  # wrk stops and prints its summary
        output, _ = self.proc.communicate(timeout=60)
        self.result = parse(output, time.monotonic() - self.started)


def parse(output: str, seconds: float) -> LoadResult:
    requests = _REQUESTS.search(output)
    if not requests:
        raise FarmError(f"wrk printed no summary: {output.strip()[-300:]}")
    non_2xx = _NON_2XX.search(output)
    socket = _SOCKET.search(output)
    return LoadResult(
        requests=int(requests[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        seconds=seconds,
        output=output,
    )
