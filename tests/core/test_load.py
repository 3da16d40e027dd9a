"""The local farm's HTTP load (wrk): loopback only, flat out by default, paced on request."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from farmhand.core.errors import FarmError
from farmhand.core.local.load import Load


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_paced_load_waits_between_requests_on_each_connection(url):
    with Load(url, connections=2, threads=1, pace_ms=500) as load:
        pass  # the block lasts the 2 s Load itself waits
    result = load.result
    assert result is not None and result.failed == 0, result
    # Two connections, one request each 500 ms at most, over the block's seconds (plus the first).
    assert 2 <= result.requests <= 2 * (int(result.seconds * 2) + 1), result.output


def test_an_unpaced_load_sends_as_fast_as_answers_come(url):
    with Load(url, connections=2, threads=1) as load:
        pass
    result = load.result
    assert result is not None and result.failed == 0, result
    assert result.requests > 2 * (int(result.seconds * 2) + 1), result.output


@pytest.mark.parametrize(
    ("target", "pace", "message"),
    [
        ("http://example.com/", None, "load is only sent to the loopback address, not 'example.com'"),
        ("http://127.0.0.1:9/", 0, "pace_ms must be a positive number of milliseconds, not 0"),
    ],
)
def test_bad_loads_are_refused(target, pace, message):
    with pytest.raises(FarmError, match=message):
        Load(target, pace_ms=pace)
