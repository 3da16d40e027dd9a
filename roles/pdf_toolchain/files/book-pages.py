#!/usr/bin/python3
# Installed by Ansible (role pdf_toolchain): local changes are overwritten.
"""book-pages: render an HTML or EPUB (XHTML) chapter at a viewport and print its height in pixels
and how many pages of that viewport it fills, as one line of JSON:

    $ book-pages chapter.xhtml
    {"file": "chapter.xhtml", "renderer": "chromium", "viewport": "800x1200", "height": 3520, "pages": 3}
    $ book-pages --renderer phantomjs --viewport 600x800 chapter.xhtml

Renderers: chromium (Debian's, headless: the maintained one) and phantomjs (2.1.1, what the
book jobs were first written for). Exit codes: 0 measured, 2 bad arguments or unreadable file,
3 the renderer failed or took longer than --timeout seconds.

Python 3 standard library only. The renderers' paths, Chromium's flags and the defaults are the
JSON file the role writes.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = Path(os.environ.get("BOOK_PAGES_CONFIG", "/etc/book-pages.json"))

# The document's full height once laid out (the larger of the root's and the body's).
HEIGHT_JS = (
    "Math.max(document.documentElement.scrollHeight, document.documentElement.offsetHeight,"
    " document.body ? document.body.scrollHeight : 0)"
)
MARK = "data-book-pages-height"

PHANTOM_SCRIPT = """
var page = require('webpage').create();
var system = require('system');
page.viewportSize = {width: parseInt(system.args[2], 10), height: parseInt(system.args[3], 10)};
page.onError = function () {};
page.open(system.args[1], function (status) {
  if (status !== 'success') {
    system.stderr.writeLine('phantomjs could not open ' + system.args[1]);
    phantom.exit(3);
  }
  window.setTimeout(function () {
    system.stdout.writeLine(page.evaluate(function () { return HEIGHT_JS; }));
    phantom.exit(0);
  }, 50);
});
""".replace("HEIGHT_JS", HEIGHT_JS)


class Failure(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def load_config() -> dict:
    """The role's settings: renderers (name -> binary), chromium_flags, renderer, viewport, timeout."""
    try:
        return json.loads(CONFIG.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Failure(f"no configuration at {CONFIG}: is the pdf_toolchain role applied?", 2) from None
    except PermissionError:
        raise Failure(f"cannot read {CONFIG}", 2) from None


def viewport(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"([1-9][0-9]{1,4})x([1-9][0-9]{1,4})", value)
    if not match:
        raise argparse.ArgumentTypeError(f"viewport must be WIDTHxHEIGHT in pixels, not {value!r}")
    return int(match.group(1)), int(match.group(2))


def run(cmd: list[str], timeout: int) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise Failure(f"{Path(cmd[0]).name} took longer than {timeout}s", 3) from None
    except OSError as err:
        raise Failure(f"cannot run {cmd[0]}: {err.strerror}", 3) from None
    if proc.returncode != 0:
        tail = " / ".join(proc.stderr.strip().splitlines()[-3:])
        raise Failure(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {tail}", 3)
    return proc.stdout


def with_probe(source: str, chapter: Path) -> str:
    """The chapter with a <base> (so its relative images and styles still load from its directory)
    and a script that writes the laid-out height onto the root element once everything loaded."""
    base = f'<base href="{html.escape(chapter.parent.as_uri())}/">'
    script = (
        "<script>window.addEventListener('load', function () {"
        f" document.documentElement.setAttribute('{MARK}', String({HEIGHT_JS})); }});</script>"
    )
    head = re.search(r"<head(\s[^>]*)?>", source, re.I)
    if head:
        source = source[: head.end()] + base + source[head.end() :]
    else:
        doctype = re.match(r"\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", source, re.I)
        source = source[: doctype.end()] + base + source[doctype.end() :]
    body_end = source.lower().rfind("</body>")
    if body_end < 0:
        return source + script
    return source[:body_end] + script + source[body_end:]


def chromium_height(config: dict, chapter: Path, width: int, height: int, timeout: int) -> int:
    source = chapter.read_text(encoding="utf-8", errors="replace")
    with tempfile.TemporaryDirectory(prefix="book-pages-") as tmp:
        # Always parsed as HTML (an XHTML chapter's markup is HTML too); its own directory stays
        # its base, through <base>.
        probe = Path(tmp) / "chapter.html"
        probe.write_text(with_probe(source, chapter), encoding="utf-8")
        flags = list(config["chromium_flags"])
        if os.geteuid() == 0 and "--no-sandbox" not in flags:
            flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        dom = run(
            [
                config["renderers"]["chromium"],
                *flags,
                f"--user-data-dir={tmp}/profile",
                f"--window-size={width},{height}",
                "--virtual-time-budget=10000",
                "--run-all-compositor-stages-before-draw",
                "--dump-dom",
                probe.as_uri(),
            ],
            timeout,
        )
    found = re.search(MARK + r'="([0-9]+)"', dom)
    if not found:
        raise Failure("chromium rendered the chapter but reported no height", 3)
    return int(found.group(1))


def phantomjs_height(config: dict, chapter: Path, width: int, height: int, timeout: int) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".js", prefix="book-pages-") as script:
        script.write(PHANTOM_SCRIPT)
        script.flush()
        out = run(
            [
                config["renderers"]["phantomjs"],
                "--local-to-remote-url-access=false",
                script.name,
                chapter.as_uri(),
                str(width),
                str(height),
            ],
            timeout,
        )
    try:
        return int(float(out.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        raise Failure(f"phantomjs printed no height: {out.strip()[:200]!r}", 3) from None


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config()
    except Failure as failure:
        print(f"book-pages: {failure}", file=sys.stderr)
        return failure.code
    parser = argparse.ArgumentParser(prog="book-pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", help="the HTML or XHTML file of one chapter")
    parser.add_argument("--renderer", choices=sorted(config["renderers"]), default=config["renderer"])
    parser.add_argument(
        "--viewport",
        type=viewport,
        default=viewport(config["viewport"]),
        help=f"WIDTHxHEIGHT in pixels (default {config['viewport']})",
    )
    parser.add_argument("--page-height", type=int, help="pixels per page (default: the viewport's height)")
    parser.add_argument(
        "--timeout", type=int, default=config["timeout"], help="seconds (default %(default)s)"
    )
    args = parser.parse_args(argv)

    chapter = Path(args.chapter).resolve()
    if not chapter.is_file() or not os.access(chapter, os.R_OK):
        print(f"book-pages: cannot read {args.chapter}", file=sys.stderr)
        return 2
    width, height = args.viewport
    page_height = args.page_height or height
    if page_height <= 0:
        print("book-pages: --page-height must be positive", file=sys.stderr)
        return 2
    measure = chromium_height if args.renderer == "chromium" else phantomjs_height
    try:
        rendered = measure(config, chapter, width, height, args.timeout)
    except Failure as failure:
        print(f"book-pages: {failure}", file=sys.stderr)
        return failure.code
    result = {
        "file": args.chapter,
        "renderer": args.renderer,
        "viewport": f"{width}x{height}",
        "height": rendered,
        "pages": max(1, math.ceil(rendered / page_height)),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
