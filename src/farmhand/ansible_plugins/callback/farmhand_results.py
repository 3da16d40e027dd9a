"""Ansible callback: record what a run did as JSON lines, the data the `farm` CLI reports from.

The CLI enables it for every ansible-playbook and ansible run it starts (`farmhand.core.runner`), and
names the file per run in FARMHAND_RESULTS_FILE. Without that variable it records nothing and
prints nothing, so enabling it in a run of your own changes nothing you see. It never prints:
Ansible's stdout callback and display settings stay whatever they are.

One JSON line per event: `start`; `changed` for each task result that changed a host (or would,
in check mode); `failed` and `unreachable` for each failure that counts (not an ignored one);
`ok` with the returned data of each successful result, only when FARMHAND_RESULTS_MODULE is set
(the CLI's ad-hoc module runs); `end` with each host's counts (the PLAY RECAP) and the playbook's
`set_stats` data. Results of `no_log` tasks reach callbacks already censored by Ansible: only the
task's name, that it changed or failed, and `"censored": true` are kept from them.
"""

from __future__ import annotations

import json
from typing import IO, Any

from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: farmhand_results
type: aggregate
short_description: Record a run's results (counts per host, failures, changes) as JSON lines
description:
  - Writes one JSON line per event of the run to a file, for the farm CLI's summaries, failure
    messages, drift reports and module results. Prints nothing.
  - Records per host counts, failed and unreachable tasks with their message, and the tasks that
    changed (or would, in check mode) with a diff to summarise; optionally the data of each
    successful result.
  - Results of no_log tasks are censored by Ansible before any callback sees them; their content
    is never recorded.
requirements:
  - enabled in callbacks_enabled (the farm CLI does it for its own runs)
options:
  path:
    description: The file the JSON lines are appended to. Unset, nothing is recorded.
    type: path
    env:
      - name: FARMHAND_RESULTS_FILE
  module_results:
    description: Also record the data each successful task result returned (what C(ansible -o) prints).
    type: bool
    default: false
    env:
      - name: FARMHAND_RESULTS_MODULE
"""

LABEL_MAX = 120
RECAP_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "unreachable": "unreachable",
    "failed": "failures",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "farmhand_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display: Any = None) -> None:
        super().__init__(display)
        self._play = ""
        self._out: IO[str] | None = None

    # -- events ------------------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._write({"event": "start", "playbook": str(playbook._file_name)})

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = play.get_name().strip()

    def v2_runner_on_ok(self, result: Any) -> None:
        if result.result.get("changed"):
            self._write(self._event("changed", result))
        if self.get_option("module_results"):
            self._write(self._ok(result))

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        if not ignore_errors:
            self._write(self._event("failed", result))

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._write(self._event("unreachable", result))

    def v2_playbook_on_stats(self, stats: Any) -> None:
        recap = {
            host: {key: int(counts.get(name, 0)) for key, name in RECAP_KEYS.items()}
            for host in sorted(stats.processed)
            for counts in (stats.summarize(host),)
        }
        self._write({"event": "end", "stats": recap, "custom": stats.custom})
        if self._out is not None:
            self._out.close()
            self._out = None

    # -- helpers -----------------------------------------------------------------------------------

    def _event(self, kind: str, result: Any) -> dict[str, Any]:
        task = result.task
        data = result.result
        event: dict[str, Any] = {
            "event": kind,
            "host": result.host.get_name(),
            "play": self._play,
            "role": task._role.get_name(include_role_fqcn=False) if task._role else None,
            "task": (task.name or task.action).strip(),
            "action": task.action,
            "handler": isinstance(task, Handler),
            "censored": "censored" in data,
        }
        if event["censored"]:
            return event
        event["path"] = data.get("dest") or data.get("path")
        if kind == "changed":
            loop = [r for r in data.get("results", []) if isinstance(r, dict) and r.get("changed")]
            event["items"] = [_label(r) for r in loop]
            diffs = [r.get("diff") for r in loop] if loop else [data.get("diff")]
            event["diff"] = [d for d in _flatten(diffs) if isinstance(d, dict)]
        else:
            event["msg"] = str(data.get("msg", ""))
        return event

    def _ok(self, result: Any) -> dict[str, Any]:
        data = result.result
        censored = "censored" in data
        return {
            "event": "ok",
            "host": result.host.get_name(),
            "task": (result.task.name or result.task.action).strip(),
            "censored": censored,
            # What `ansible -o` printed: no internal keys, no module arguments.
            "result": None
            if censored
            else {k: v for k, v in data.items() if not k.startswith("_ansible") and k != "invocation"},
        }

    def _write(self, event: dict[str, Any]) -> None:
        if self._out is None:
            path = self.get_option("path")
            if not path:
                return
            self._out = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed at the end)
        self._out.write(json.dumps(event, default=str) + "\n")


def _label(result: dict[str, Any]) -> str | None:
    if "censored" in result:
        return None
    label = result.get("_ansible_item_label", result.get("item"))
    text = label if isinstance(label, str) else json.dumps(label, default=str, sort_keys=True)
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 3] + "..."


def _flatten(diffs: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat
