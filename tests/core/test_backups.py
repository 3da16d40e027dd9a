"""What `farm pg:backups*` reads from pgBackRest and systemd, and the checks a restore makes
before anything changes; the local farm's TLS front before S3."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from farmhand.core.backups import (
    Backup,
    Restore,
    check_request,
    parse_info,
    parse_time,
    parse_timers,
    plan_restore,
    stamp,
)
from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.local.s3front import S3Front, ensure_certificate
from farmhand.core.project import Project
from farmhand.core.target import Target

ROOT = Path(__file__).resolve().parents[2]


def target(*roles: tuple[str, str]) -> Target:
    hosts = [
        Host(name, (role,), f"i-{n}", f"10.0.0.{n}", "running", "t3.small")
        for n, (name, role) in enumerate(roles)
    ]
    return Target(project=Project(ROOT), farm="bk", local=False, hosts=hosts)


FARM = target(("bk-db-1", "db"), ("bk-db-follower-1", "db_follower"), ("bk-db-restore-1", "db_restore"))


def info_json(*backups: dict) -> str:
    return json.dumps([{"name": "bk", "status": {"code": 0, "message": "ok"}, "backup": list(backups)}])


def raw_backup(label: str, kind: str, start: int, stop: int) -> dict:
    return {
        "label": label,
        "type": kind,
        "timestamp": {"start": start, "stop": stop},
        "info": {
            "size": 31_000_000,
            "delta": 31_000_000,
            "repository": {"size": 4_000_000, "delta": 3_500_000},
        },
        "archive": {"start": "000000010000000000000003", "stop": "000000010000000000000004"},
    }


FULL = raw_backup("20261123-100000F", "full", 1_795_000_000, 1_795_000_060)
DIFF = raw_backup("20261123-100000F_20261124-100000D", "diff", 1_795_086_400, 1_795_086_410)
BACKUPS = parse_info(info_json(DIFF, FULL), "bk")


def test_backups_are_read_oldest_first_with_sizes_and_wal_range():
    assert [b.label for b in BACKUPS] == ["20261123-100000F", "20261123-100000F_20261124-100000D"]
    full = BACKUPS[0]
    assert full == Backup(
        "20261123-100000F",
        "full",
        1_795_000_000,
        1_795_000_060,
        31_000_000,
        3_500_000,
        "000000010000000000000003",
        "000000010000000000000004",
    )
    assert full.as_dict()["finished_at"] == "2026-11-18 11:07:40+00"


def test_a_missing_stanza_says_to_converge():
    text = json.dumps([{"name": "bk", "status": {"code": 1, "message": "missing stanza path"}}])
    with pytest.raises(FarmError, match=r"no stanza 'bk' yet: run `farm converge -f bk`"):
        parse_info(text, "bk")
    with pytest.raises(FarmError, match="did not answer JSON"):
        parse_info("ERROR: [037]: no stanza", "bk")


def test_stamps_read_back_as_times():
    assert parse_time(stamp(1_795_000_060)).timestamp() == 1_795_000_060
    assert parse_time("2026-11-23 10:30:00+01").timestamp() == parse_time("2026-11-23 09:30:00Z").timestamp()


@pytest.mark.parametrize("bad", ["yesterday", "2026-11-23 10:30:00", "2026-13-45 10:30:00+00", "now+00"])
def test_a_time_without_offset_or_not_a_time_is_refused(bad):
    with pytest.raises(FarmError, match="invalid --to-time"):
        parse_time(bad)


def test_a_restore_goes_to_the_restore_host_by_default():
    request = check_request(FARM, None, None, None, None)
    assert request == Restore("bk-db-restore-1", in_place=False)
    assert plan_restore(FARM, request, BACKUPS).extra_vars() == {
        "farmhand_restore": {"host": "bk-db-restore-1", "in_place": False, "set": "", "time": ""}
    }


def test_a_restore_in_place_needs_the_farms_name_to_confirm():
    with pytest.raises(FarmError, match="to proceed, pass --confirm bk"):
        check_request(FARM, None, None, "bk-db-1", None)
    with pytest.raises(FarmError, match="to proceed, pass --confirm bk"):
        check_request(FARM, None, None, "bk-db-1", "other")
    assert check_request(FARM, None, None, "bk-db-1", "bk").in_place


def test_an_unknown_label_is_refused_naming_the_backups():
    request = check_request(FARM, "20991231-000000F", None, None, None)
    with pytest.raises(
        FarmError, match=r"unknown backup '20991231-000000F': the backups of 'bk' are 20261123"
    ):
        plan_restore(FARM, request, BACKUPS)


def test_a_time_before_the_first_backup_finished_is_refused():
    early = check_request(FARM, None, stamp(1_795_000_059), None, None)
    with pytest.raises(FarmError, match="before the first backup of 'bk' finished"):
        plan_restore(FARM, early, BACKUPS)
    later = check_request(FARM, None, stamp(1_795_000_061), None, None)
    assert plan_restore(FARM, later, BACKUPS).extra_vars()["farmhand_restore"]["time"] == stamp(1_795_000_061)


def test_a_farm_without_backups_has_nothing_to_restore():
    with pytest.raises(FarmError, match="no backups yet: farm pg:backups:capture -f bk"):
        plan_restore(FARM, check_request(FARM, None, None, None, None), [])


def test_schedules_are_read_from_the_active_timers():
    shown = (
        "Id=pgbackrest-backup-full.timer\nUnitFileState=enabled\nActiveState=active\n"
        "TimersCalendar={ OnCalendar=Sun *-*-* 03:00:00 ; next_elapse=Sun 2026-11-29 03:00:00 UTC }\n"
        "NextElapseUSecRealtime=Sun 2026-11-29 03:00:00 UTC\nLastTriggerUSec=\n\n"
        "Id=pgbackrest-backup-diff.timer\nUnitFileState=enabled\nActiveState=active\n"
        "TimersCalendar={ OnCalendar=Mon..Sat *-*-* 03:00:00 ; next_elapse=Tue 2026-11-24 03:00:00 UTC }\n"
        "NextElapseUSecRealtime=Tue 2026-11-24 03:00:00 UTC\nLastTriggerUSec=Mon 2026-11-23 03:00:04 UTC\n\n"
        "Id=pgbackrest-backup-incr.timer\nUnitFileState=\nActiveState=inactive\nTimersCalendar=\n"
    )
    assert [s.as_dict() for s in parse_timers(shown)] == [
        {
            "type": "full",
            "calendar": "Sun *-*-* 03:00:00",
            "next": "Sun 2026-11-29 03:00:00 UTC",
            "last": "never",
        },
        {
            "type": "diff",
            "calendar": "Mon..Sat *-*-* 03:00:00",
            "next": "Tue 2026-11-24 03:00:00 UTC",
            "last": "Mon 2026-11-23 03:00:04 UTC",
        },
    ]


class _Moto(http.server.BaseHTTPRequestHandler):
    """Stands for moto: answers every request with what it received (method, Host, body's digest)."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "host": self.headers.get("Host"),
                "length": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Moto)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_tls_front_is_nginx_passing_requests_to_moto_with_their_host_and_body(tmp_path, upstream):
    front = S3Front(tmp_path / "s3")
    try:
        endpoint = front.ensure("127.0.0.1", upstream)
        host, port = endpoint.split(":")
        assert host == "127.0.0.1"
        pid = front.pid()
        assert pid is not None
        assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"nginx: master process")
        assert (tmp_path / "s3" / "server.key").stat().st_mode & 0o077 == 0
        # A second start is a no-op: the same nginx, the same address.
        assert front.ensure("127.0.0.1", upstream) == endpoint
        assert front.pid() == pid

        context = ssl.create_default_context(cafile=str(front.ca_file))
        body = os.urandom(5 * 1024 * 1024)  # bigger than any nginx buffer: streamed through
        conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=120)
        conn.request("PUT", "/bk-backups/bk/archive/file?partNumber=1", body=body)
        answer = json.loads(conn.getresponse().read())
        conn.close()
        assert answer == {
            "method": "PUT",
            "path": "/bk-backups/bk/archive/file?partNumber=1",
            "host": endpoint,  # the Host pgBackRest signed reaches moto unchanged
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }

        # Another CA (another farm's) is not trusted.
        other = S3Front(tmp_path / "other")
        ensure_certificate(other.dir, "127.0.0.1")
        stranger = ssl.create_default_context(cafile=str(other.ca_file))
        with (
            socket.create_connection((host, int(port)), timeout=120) as sock,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            stranger.wrap_socket(sock, server_hostname=host)
    finally:
        front.stop()
    assert front.pid() is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_tls_front_moves_with_moto(tmp_path, upstream):
    """moto on another port (restarted): the next start replaces nginx."""
    front = S3Front(tmp_path / "s3")
    try:
        front.ensure("127.0.0.1", upstream)
        first = front.pid()
        front.ensure("127.0.0.1", upstream + 1)
        assert front.pid() not in (None, first)
        assert f"127.0.0.1:{upstream + 1};" in front.conf_file.read_text()
    finally:
        front.stop()


def test_the_example_db_policy_covers_the_farms_backup_repository():
    """examples/iam/db-instance-profile.json names the bucket and prefix group_vars give a farm's
    repository, and pgBackRest's S3 calls (list, get, put, delete): nothing else runs on db hosts."""
    text = (ROOT / "examples/iam/db-instance-profile.json").read_text()
    policy = json.loads(text.replace("APP", "bookshelf").replace("FARM", "ci"))
    project = Project(ROOT)
    render = {  # as Ansible gives them to a host of farm ci (farmhand.core.variables), as a converge would
        name: project.farm_var("ci", name) for name in ("farmhand_backup_bucket", "farmhand_backup_path")
    }
    bucket, prefix = render["farmhand_backup_bucket"], render["farmhand_backup_path"].strip("/")
    assert (bucket, prefix) == ("bookshelf-backups-ci", "ci")
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert all(s["Effect"] == "Allow" for s in statements.values())
    assert {s["Resource"] for s in statements.values()} == {
        f"arn:aws:s3:::{bucket}",
        f"arn:aws:s3:::{bucket}/{prefix}/*",
    }
    actions = set()
    for statement in statements.values():
        action = statement["Action"]
        actions |= {action} if isinstance(action, str) else set(action)
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    listing = statements["BackupBucketRepository"]["Condition"]["StringLike"]["s3:prefix"]
    assert listing == [f"{prefix}/*"]
    defaults = (ROOT / "roles/pgbackrest/defaults/main.yml").read_text()
    assert "pgbackrest_s3_key_type: auto" in defaults  # the instance profile's credentials on EC2
