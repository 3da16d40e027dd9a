"""The worker tier on the whole local farm: long jobs across deploys, config changes and converges,
and the sample app's book-processing job end to end.

A long job keeps running and finishes across `farm deploy`, `farm config:set` and `farm converge`:
the workers are handed over (the running Sidekiq process is quieted, a new one starts from the new
release or config, the old one exits once its jobs are done), never restarted under a job. In
production the job would run 10 minutes (the books process's budget is an hour). Here HoldJob
holds at least FARMHAND_TEST_HOLD_SECONDS (75 s unless set: longer than Heroku's 30 s shutdown)
and, through a release key in Redis, until the test has run the three operations, so it spans
every hand-over however long they take on the machine. Its completion record (the book, and the
job's record in Redis: how many times it started, in which process it started and finished)
shows it ran once, in one process, to the end.

The book-processing job runs on a multi-page PDF the test writes: the book ends "processed" with
its pages counted, and the per-page PDFs, the cover thumbnail and the AES-128 encrypted copy are
in the farm's S3 bucket (moto), checked with boto3.
"""

from __future__ import annotations

import json
import os
import struct
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from farmlib import (
    FARM,
    app_url,
    aws,
    container,
    farm,
    farm_env,
    first_with_role,
    get,
    git,
    on_host,
    run,
    wait_for,
)

pytestmark = pytest.mark.farm

HOLD_SECONDS = int(os.environ.get("FARMHAND_TEST_HOLD_SECONDS", "75"))
CTL = "/usr/local/sbin/sidekiq-bookshelf"
APP_ENV = "/usr/local/bin/app-env"
BUCKET = f"bookshelf-files-{FARM}".replace("_", "-").lower()


# -- the app, over HTTP through the load balancer ---------------------------------------------------


def post(path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        app_url() + path,
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode() or "{}")


def new_book(title: str, **attributes: Any) -> int:
    status, book = post("/books", {"book": {"title": title, **attributes}})
    assert status == 201, book
    return int(book["id"])


def book(book_id: int) -> dict[str, Any]:
    status, _, body = get(f"{app_url()}/books/{book_id}")
    assert status == 200, body
    return json.loads(body)


def wait_for_status(book_id: int, wanted: str, seconds: float) -> dict[str, Any]:
    """The book's record once its status is WANTED; a book that failed fails the test at once."""

    def reached() -> dict[str, Any] | None:
        record = book(book_id)
        assert record["status"] != "failed", record
        return record if record["status"] == wanted else None

    return wait_for(reached, seconds, lambda: f"book {book_id} {wanted}: it is {book(book_id)['status']}")


# -- the worker host: Redis through the app's environment, the Sidekiq processes -------------------


def ruby(host: str, script: str, *args: str) -> str:
    """Ruby with the app's environment (REDIS_URL) on HOST, the gems Debian installed."""
    proc = on_host(host, APP_ENV, "ruby", "-W0", "-rjson", "-rredis", "-e", script, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def enqueue(host: str, job: str, args: list[Any], queue: str = "books") -> str:
    """Push a job as the app's Sidekiq client does; returns its jid."""
    script = (
        'require "sidekiq"; Sidekiq.configure_client { |c| c.redis = { url: ENV["REDIS_URL"] } }; '
        'puts Sidekiq::Client.push("class" => ARGV[0], "args" => JSON.parse(ARGV[1]), "queue" => ARGV[2])'
    )
    return ruby(host, script, job, json.dumps(args), queue)


def redis(host: str, *command: str) -> Any:
    """One Redis command on the farm's Redis, its reply as JSON."""
    return json.loads(ruby(host, 'puts Redis.new(url: ENV["REDIS_URL"]).call(*ARGV).to_json', *command))


def hold_record(host: str, book_id: int) -> dict[str, str]:
    reply = redis(host, "HGETALL", f"hold_job:{book_id}")
    return dict(zip(reply[::2], reply[1::2], strict=True)) if isinstance(reply, list) else dict(reply)


def units(host: str) -> dict[str, str]:
    """The books process's generations systemd runs: {unit: "state enabled title"}."""
    out = on_host(host, CTL, "status", "books").stdout
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.splitlines() if line.strip()}


def running(host: str) -> str:
    """The books process's one generation that takes jobs (active, not quiet)."""
    live = [u for u, s in units(host).items() if s.startswith("active ") and " stopping" not in s]
    assert len(live) == 1, units(host)
    return live[0]


def wait_quiet(host: str, unit: str, seconds: float = 60) -> None:
    """Sidekiq shows "stopping" in its title at its next heartbeat (5 s) once quieted."""
    wait_for(
        lambda: " stopping" in units(host).get(unit, ""), seconds, lambda: f"{unit} quiet: {units(host)}"
    )


def wait_gone(host: str, unit: str, seconds: float = 120) -> None:
    wait_for(lambda: unit not in units(host), seconds, lambda: f"{unit} exited: {units(host)}")


def never_retried(host: str) -> None:
    """No HoldJob in Sidekiq's retry or dead sets (a killed job would be retried or die)."""
    for zset in ("retry", "dead"):
        entries = redis(host, "ZRANGE", zset, "0", "-1")
        assert not [e for e in entries if '"HoldJob"' in e], (zset, entries)


def test_a_long_job_finishes_across_deploy_config_set_and_converge(deployed_app):
    worker = first_with_role("worker")
    releases = json.loads(farm("releases", "-f", FARM, "--json").stdout)["releases"]
    started_on = next(r for r in releases if r["current"])["version"]
    release_key = f"hold_job:release:{uuid.uuid4().hex}"

    first = new_book("Long job across a deploy")
    enqueue(worker, "HoldJob", [first, HOLD_SECONDS, release_key])
    wait_for_status(first, "processing", 120)
    gen1 = running(worker)
    assert hold_record(worker, first)["started_in"] == gen1

    # A deploy of a new release: the running process is quieted and keeps its job, a new one
    # starts from the new release.
    repo = deployed_app["path"]
    git(repo, "checkout", "-qb", f"workers-{uuid.uuid4().hex[:6]}")
    git(repo, "commit", "-q", "--allow-empty", "-m", "A release for the worker hand-over")
    farm("deploy", "-f", FARM, "--repo", repo, "--ref", git(repo, "rev-parse", "HEAD"))
    git(repo, "checkout", "-q", "main")
    gen2 = running(worker)
    assert gen2 != gen1
    wait_quiet(worker, gen1)
    assert book(first)["status"] == "processing"

    second = new_book("Long job across a config change")
    enqueue(worker, "HoldJob", [second, HOLD_SECONDS, release_key])
    wait_for_status(second, "processing", 120)
    assert hold_record(worker, second)["started_in"] == gen2

    # A config change: the same hand-over, to a process that reads the new env file.
    farm("config:set", "-f", FARM, "FARMHAND_WORKERS_TEST=handed-over")
    gen3 = running(worker)
    assert gen3 not in (gen1, gen2)
    wait_quiet(worker, gen2)
    # (The new process read the env file at its start: /proc/PID/environ is closed to podman exec.)
    shown = on_host(worker, APP_ENV, "printenv", "FARMHAND_WORKERS_TEST")
    assert shown.stdout.strip() == "handed-over"

    # A converge that changes nothing leaves the workers running: no hand-over at all.
    farm("converge", "-f", FARM)
    assert running(worker) == gen3
    assert {book(first)["status"], book(second)["status"]} == {"processing"}

    # Let the jobs end: each finishes in the process it started in, having started once.
    redis(worker, "SET", release_key, "1", "EX", "3600")
    for book_id, generation in ((first, gen1), (second, gen2)):
        wait_for_status(book_id, "processed", HOLD_SECONDS + 120)
        record = hold_record(worker, book_id)
        assert record["starts"] == "1", record
        assert record["started_in"] == record["finished_in"] == generation, record
        wait_gone(worker, generation)
    never_retried(worker)
    print(f"\nlong jobs held at least {HOLD_SECONDS}s; records: {hold_record(worker, first)}, "
          f"{hold_record(worker, second)}")  # fmt: skip

    # Leave the farm as it was: its release's code and config (a rollback hands over once more).
    farm("rollback", "-f", FARM, f"v{started_on}", "--repo", repo)
    assert running(worker) not in (gen1, gen2, gen3)


# -- the book-processing job --------------------------------------------------------------------


def sample_pdf(pages: int) -> bytes:
    """A PDF of PAGES letter pages, each with a heading and a few paragraphs of text."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for page in range(1, pages + 1):
        lines = [f"Chapter {page}"] + [
            f"Paragraph {n} of page {page}: the farm keeps long book jobs running to the end."
            for n in range(1, 9)
        ]
        text = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({line}) Tj T* T*" for line in lines) + " ET"
        content = text.encode()
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (len(objects), 3 + 2 * pages)
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        pages,
    )
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    return struct.unpack(">II", data[16:24])


def test_the_book_processing_job_runs_end_to_end(deployed_app, tmp_path):
    s3 = aws("s3", farm_env())
    pages = 5
    source_key = f"uploads/{uuid.uuid4().hex}.pdf"
    s3.put_object(Bucket=BUCKET, Key=source_key, Body=sample_pdf(pages), ContentType="application/pdf")
    book_id = new_book("A sample book", source_key=source_key)

    status, queued = post(f"/books/{book_id}/process")
    assert status == 202, queued
    done = wait_for_status(book_id, "processed", 600)

    prefix = f"books/{book_id}"
    assert done["pages"] == pages
    assert done["rendered_pages"] >= 1 and done["rendered_height"] > 500
    assert done["pages_prefix"] == f"{prefix}/pages/"
    assert done["thumbnail_key"] == f"{prefix}/cover.png"
    assert done["encrypted_key"] == f"{prefix}/encrypted.pdf"
    assert done["processed_at"] and done["error"] is None

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=done["pages_prefix"])["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"{prefix}/pages/page_{n:04d}.pdf" for n in range(1, pages + 1)
    ]
    for item in listed:
        page = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        assert page.startswith(b"%PDF-") and b"/Count 1" in page

    width, height = png_size(s3.get_object(Bucket=BUCKET, Key=done["thumbnail_key"])["Body"].read())
    assert max(width, height) == 300 and min(width, height) > 100

    encrypted = s3.get_object(Bucket=BUCKET, Key=done["encrypted_key"])["Body"].read()
    assert encrypted.startswith(b"%PDF-")
    # AES-128: the standard security handler, revision 4, the AESV2 crypt filter.
    assert b"/Encrypt" in encrypted and b"/AESV2" in encrypted
    # qpdf on the worker opens it without a password (readers need none) and names the method.
    worker = first_with_role("worker")
    local = tmp_path / "encrypted.pdf"
    local.write_bytes(encrypted)
    assert run("podman", "cp", str(local), f"{container(worker)}:/tmp/farmhand-encrypted.pdf").returncode == 0
    shown = on_host(worker, "qpdf", "--show-encryption", "/tmp/farmhand-encrypted.pdf")
    on_host(worker, "rm", "-f", "/tmp/farmhand-encrypted.pdf")
    assert "R = 4" in shown.stdout and "file encryption method: AESv2" in shown.stdout, shown.stdout
    print(f"\nbook {book_id}: {pages} pages, rendered {done['rendered_height']}px = "
          f"{done['rendered_pages']} pages at 800x1200; thumbnail {width}x{height}")  # fmt: skip
