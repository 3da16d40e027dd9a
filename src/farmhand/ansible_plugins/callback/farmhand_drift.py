"""Ansible callback: record the task results `farm converge --check --json` builds its drift report from.

Enabled by the CLI only (ANSIBLE_CALLBACKS_ENABLED=farmhand_drift, this directory on
ANSIBLE_CALLBACK_PLUGINS); Ansible's own output is untouched. It writes one JSON line per task result
that changed (or would, in check mode), failed or found its host unreachable, to the file named by
FARMHAND_DRIFT_FILE. Results of `no_log` tasks reach callbacks already censored by Ansible: only the
task's name and that it changed are kept from them. `farmhand.drift` turns the lines into the report.
"""

from __future__ import annotations

import json
from typing import Any

from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: farmhand_drift
type: aggregate
short_description: Record changed, failed and unreachable task results as JSON lines
description:
  - Writes one JSON line per task result that changed (or would change, in check mode), failed or
    found its host unreachable, for the drift report of C(farm converge --check --json).
  - Results of no_log tasks are censored by Ansible before any callback sees them.
requirements:
  - enabled in callbacks_enabled (the farm CLI does it)
options:
  path:
    description: The file the JSON lines are appended to.
    type: path
    env:
      - name: FARMHAND_DRIFT_FILE
"""

LABEL_MAX = 120


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "farmhand_drift"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display: Any = None) -> None:
        super().__init__(display)
        self._play = ""

    # -- events ------------------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._write({"event": "start", "playbook": str(playbook._file_name)})

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = play.get_name().strip()

    def v2_runner_on_ok(self, result: Any) -> None:
        if result.result.get("changed"):
            self._write(self._event("changed", result))

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        if not ignore_errors:
            self._write(self._event("failed", result))

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._write(self._event("unreachable", result))

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._write({"event": "end"})

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

    def _write(self, event: dict[str, Any]) -> None:
        path = self.get_option("path")
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(event, default=str) + "\n")


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
