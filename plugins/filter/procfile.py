"""Filters that read the app's Procfile in a play, with the same rules as `farm deploy`'s checks
(farmhand.core.procfile). A Procfile or formation Farmhand cannot run fails the task with the same
one line the CLI prints. TEXT is the Procfile's content, None when the app has none.

    release_command: "{{ text | farmhand_release_command }}"
    paths: "{{ text | farmhand_sidekiq_config_paths }}"
    processes: "{{ text | farmhand_processes(farmhand_formation, configs, farmhand_rails_env) }}"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from farmhand.core import procfile


def release_command(text: str | None) -> str:
    """The release phase's command of the Procfile TEXT (None: the app has none)."""
    try:
        return procfile.parse(text).release_command
    except procfile.ProcfileError as exc:
        raise AnsibleFilterError(str(exc)) from None


def sidekiq_config_paths(text: str | None) -> list[str]:
    """The app's files (relative to its root) the Procfile TEXT's Sidekiq types may read their
    settings from: each type's -C, else the ones Sidekiq reads by itself."""
    try:
        return procfile.sidekiq_config_paths(procfile.parse(text))
    except procfile.ProcfileError as exc:
        raise AnsibleFilterError(str(exc)) from None


def processes(
    text: str | None,
    formation: Mapping[str, Any] | None = None,
    configs: Mapping[str, str | None] | None = None,
    rails_env: str = "production",
) -> dict[str, Any]:
    """What a worker host runs of the Procfile TEXT, placed by FORMATION (farmhand_formation), its
    Sidekiq types' settings completed from the app's config files CONFIGS (path: text, None when the
    release has no such file; see sidekiq_config_paths) for RAILS_ENV: `declared` (whether the app
    has a Procfile), `sidekiq` (sidekiq_worker_processes) and `services` (app_processes_list)."""
    try:
        parsed = procfile.with_sidekiq_configs(procfile.parse(text), configs or {}, rails_env)
        placements = procfile.formation(parsed, formation)
    except procfile.ProcfileError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return {
        "declared": parsed.declared,
        "sidekiq": procfile.sidekiq_processes(placements),
        "services": procfile.services(placements),
    }


class FilterModule:
    """Farmhand's Procfile filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "farmhand_release_command": release_command,
            "farmhand_sidekiq_config_paths": sidekiq_config_paths,
            "farmhand_processes": processes,
        }
