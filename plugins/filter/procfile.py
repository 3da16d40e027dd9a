"""Filters that read the app's Procfile in a play, with the same rules as `farm deploy`'s checks
(farmhand.core.procfile): `farmhand_release_command` gives the command a deploy's release phase
runs. A Procfile Farmhand cannot run fails the task with the same one line the CLI prints.

    release_command: "{{ procfile_text | farmhand_release_command }}"   # None: no Procfile
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from farmhand.core import procfile


def release_command(text: str | None) -> str:
    """The release phase's command of the Procfile TEXT (None: the app has none)."""
    try:
        return procfile.parse(text).release_command
    except procfile.ProcfileError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """Farmhand's Procfile filters."""

    def filters(self) -> dict[str, Any]:
        return {"farmhand_release_command": release_command}
