"""Render drift reports (`farm converge --check --json`) as Markdown, e.g. for a CI job summary.

    python -m farmhand.drift_summary drift-staging.json drift-production.json >> "$GITHUB_STEP_SUMMARY"

A file that is missing, empty or not a report (the check stopped before Ansible ran: bad input,
no credentials) gets a line saying so instead of a table: the summary is written whatever the
check did, and the exit code is 0 unless no file was given.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HEADINGS = {"clean": "no drift", "drift": "drift found", "failed": "check failed"}


def cell(value: Any) -> str:
    """VALUE as one Markdown table cell: pipes escaped, newlines flattened, empty as a dash."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or "-"


def diff_text(diff: Mapping[str, Any] | None) -> str:
    if not diff:
        return ""
    parts = [f"+{diff['added']} -{diff['removed']} lines"] if diff.get("added") or diff.get("removed") else []
    if diff.get("attributes"):
        parts.append(", ".join(diff["attributes"]))
    return "; ".join(parts)


def render(report: Mapping[str, Any]) -> str:
    """One farm's report: a heading with the verdict, a table of changes, failures and handlers."""
    farm, status = report["farm"], report["status"]
    checked = len(report.get("checked", []))
    changed = report.get("changed", [])
    lines = [f"### {farm}: {HEADINGS.get(status, status)}", ""]
    what = "would change" if report.get("check") else "changed"
    lines.append(f"{checked} hosts checked; {len(changed)} {what}; {len(report.get('failed', []))} failed.")
    lines.append("")
    hosts: Mapping[str, Any] = report.get("hosts", {})
    changes = [(h, c) for h, r in hosts.items() for c in r.get("changes", [])]
    if changes:
        lines += ["| Host | Task | Role | Play | Path | Diff |", "| --- | --- | --- | --- | --- | --- |"]
        for host, c in changes:
            task = c["task"] + (" (censored: no_log)" if c.get("censored") else "")
            if c.get("items"):
                task += f" [{', '.join(c['items'])}]"
            row = (host, task, c.get("role"), c.get("play"), c.get("path"), diff_text(c.get("diff")))
            lines.append("| " + " | ".join(cell(v) for v in row) + " |")
        lines.append("")
    handlers = {h: r["handlers"] for h, r in hosts.items() if r.get("handlers")}
    for host, names in handlers.items():
        lines.append(f"- {cell(host)} would then run: {cell(', '.join(names))}")
    if handlers:
        lines.append("")
    failures = [(h, f) for h, r in hosts.items() for f in r.get("failures", [])]
    if failures:
        lines += ["| Failed host | Task | Message |", "| --- | --- | --- |"]
        for host, f in failures:
            task = f["task"] + (" (unreachable)" if f.get("unreachable") else "")
            lines.append(f"| {cell(host)} | {cell(task)} | {cell(f.get('message'))} |")
        lines.append("")
    return "\n".join(lines)


def render_file(path: Path) -> str:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(report, dict) or not {"farm", "status"} <= report.keys():
            raise ValueError("not a drift report")
    except (OSError, ValueError) as exc:
        return f"### {path.name}: no report\n\nThe check produced no report ({exc}): see the job's log.\n"
    return render(report)


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m farmhand.drift_summary REPORT.json...", file=sys.stderr)
        return 2
    sys.stdout.write("\n".join(render_file(Path(p)) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
