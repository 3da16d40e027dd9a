"""Shell completion: commands (click's own), farms, roles and hosts, without asking AWS.

Farms and hosts come from what is on disk: the farms configured in group_vars, the local farms of
this checkout (`.farm/local/<farm>/farm.json`) and the instances in the inventory's cache (the
aws_ec2 plugin's jsonfile cache, written by every command that lists hosts). A completion never
calls AWS or Ansible, so it answers at once; a farm not seen for a while completes once `farm ps`
has run. Nothing here may fail: a completion that cannot work out an answer offers nothing.

Bash splits words at `:` (COMP_WORDBREAKS), which would turn `farm config:s<TAB>` into
`config:config:set`: the bash script gives the whole line and the word breaks to `farm`, which
answers with the part of each word bash will replace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from click.shell_completion import BashComplete, CompletionItem, add_completion_class, split_arg_string

from farmhand.core.inventory import roles_of
from farmhand.core.project import FARM_NAME, Project

COMPLETE_VAR = "_FARM_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def _project() -> Project | None:
    try:
        return Project.locate()
    except Exception:
        return None


def _json_instances(value: Any) -> Iterator[dict[str, Any]]:
    """EC2 instance descriptions anywhere in a cache file (its payload may be a JSON string itself)."""
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            value = json.loads(value)
        except ValueError:
            return
    if isinstance(value, dict):
        if "InstanceId" in value and "Tags" in value:
            yield value
            return
        for item in value.values():
            yield from _json_instances(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_instances(item)


def cached_hosts(project: Project) -> list[tuple[str, str, tuple[str, ...]]]:
    """(farm, host, roles) of every host this checkout knows of, without asking AWS."""
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for state in sorted((project.state_dir / "local").glob("*/farm.json")):
        try:
            for host in json.loads(state.read_text()).get("hosts", []):
                found[(state.parent.name, host["name"])] = tuple(host.get("roles", ()))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    dirs = [*sorted((project.state_dir / "cache").glob("inventory*"))]
    if os.environ.get("ANSIBLE_INVENTORY_CACHE_CONNECTION"):
        dirs.append(Path(os.environ["ANSIBLE_INVENTORY_CACHE_CONNECTION"]))
    for directory in dirs:
        for path in sorted(directory.glob("*aws_ec2*")) if directory.is_dir() else []:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for inst in _json_instances(data):
                if (inst.get("State") or {}).get("Name") not in ("running", "pending"):
                    continue
                tags = {t.get("Key"): t.get("Value") for t in inst.get("Tags") or [] if isinstance(t, dict)}
                name = tags.get("Name") or inst.get("PrivateIpAddress")
                if tags.get("farm") and name:
                    found[(tags["farm"], name)] = roles_of(tags.get("role") or "")
    return [(farm, host, roles) for (farm, host), roles in sorted(found.items())]


def known_farms(project: Project) -> list[str]:
    farms = project.configured_farms() | {farm for farm, _, _ in cached_hosts(project)}
    return sorted(f for f in farms if FARM_NAME.match(f))


def _items(values: list[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(v) for v in values if v.startswith(incomplete)]


def _farm_of(ctx: click.Context) -> str | None:
    while ctx is not None:
        if ctx.params.get("farm"):
            return str(ctx.params["farm"])
        ctx = ctx.parent  # type: ignore[assignment]
    return os.environ.get("FARMHAND_FARM")


def complete_farm(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    project = _project()
    return _items(known_farms(project), incomplete) if project else []


def complete_role(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    project = _project()
    return _items(list(project.roles), incomplete) if project else []


def farm_host_names(ctx: click.Context) -> list[str]:
    project = _project()
    farm = _farm_of(ctx)
    if not project or not farm:
        return []
    return [host for f, host, _ in cached_hosts(project) if f == farm]


def complete_host(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return _items(farm_host_names(ctx), incomplete)


def complete_scp_path(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`HOST:` for a host's name, else a local path."""
    if ":" not in incomplete:
        hosts = _items([f"{h}:" for h in farm_host_names(ctx)], incomplete)
        if hosts:
            return [CompletionItem(i.value, type="nospace") for i in hosts]
    return [CompletionItem(incomplete, type="file")]


# -- bash: words with colons ---------------------------------------------------------------------

_BASH_SOURCE = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response
    response=$(env COMP_LINE="${COMP_LINE:0:$COMP_POINT}" _FARM_WORDBREAKS="$COMP_WORDBREAKS" \\
%(complete_var)s=bash_complete $1)
    for completion in $response; do
        IFS=',' read type value <<< "$completion"
        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'nospace' ]]; then
            compopt -o nospace
            COMPREPLY+=("$value")
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=("$value")
        fi
    done
    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


class FarmBashComplete(BashComplete):
    """Click's bash completion, reading the whole line so that `config:s` stays one word."""

    source_template = _BASH_SOURCE
    _incomplete = ""

    @staticmethod
    def _check_version() -> None:
        """Click runs bash to warn about bash < 4.4; Debian 12 has bash 5, and printing must not wait."""

    def get_completion_args(self) -> tuple[list[str], str]:
        line = os.environ.get("COMP_LINE", "")
        words = split_arg_string(line)
        incomplete = "" if not line or line[-1].isspace() else (words.pop() if words else "")
        return words[1:], incomplete

    def format_completion(self, item: CompletionItem) -> str:
        value = item.value
        breaks = os.environ.get("_FARM_WORDBREAKS", "")
        incomplete = self._incomplete
        # Bash replaces only what follows the last word break in the word being completed.
        cut = max((incomplete.rfind(c) for c in breaks if c not in " \t\n"), default=-1)
        if cut >= 0 and value.startswith(incomplete[: cut + 1]):
            value = value[cut + 1 :]
        return f"{item.type},{value}"

    def complete(self) -> str:
        args, self._incomplete = self.get_completion_args()
        completions = self.get_completions(args, self._incomplete)
        return "\n".join(self.format_completion(item) for item in completions)


add_completion_class(FarmBashComplete, "bash")


def script(cli: click.Command, shell: str) -> str:
    """The completion script for SHELL (`eval "$(farm completion bash)"`)."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    return cls(cli, {}, "farm", COMPLETE_VAR).source()
