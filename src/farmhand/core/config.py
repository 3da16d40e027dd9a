"""Config vars (Heroku's `config:*`), kept in SSM Parameter Store.

The live config is one SecureString parameter per variable, /farmhand/<farm>/config/<KEY>: the
team shares it, AWS audits it, the playbooks read it by path, and it never lives in git.

Each release records the config it ran with as a numbered *config version*: a snapshot of every
variable, itself SecureString parameters under /farmhand/<farm>/config-versions/<n>/ (split in
parts of at most 4,000 characters, the standard tier's limit with room to spare). A rollback puts
the live parameters back to the snapshot of the release it returns to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from farmhand.core.aws import aws_errors
from farmhand.core.errors import FarmError
from farmhand.core.target import Target

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_NAME = 255
# SSM holds 4 KB in a standard parameter and 8 KB in an advanced one; the Intelligent-Tiering tier
# picks advanced only for a value that needs it.
MAX_VALUE_BYTES = 8192
TIER = "Intelligent-Tiering"
PART_CHARS = 4000
_PART = re.compile(r"^(?P<n>[0-9]+)/(?P<i>[0-9]+)-of-(?P<k>[0-9]+)\Z")


def live_path(farm: str) -> str:
    return f"/farmhand/{farm}/config/"


def versions_path(farm: str) -> str:
    return f"/farmhand/{farm}/config-versions/"


# -- checking what the user asks for --------------------------------------------------------------


def check_name(name: str, reserved: Mapping[str, str]) -> str:
    """A valid, unreserved variable name, or a FarmError saying what is wrong with it."""
    if not NAME.match(name) or len(name) > MAX_NAME:
        raise FarmError(
            f"invalid config var name {name!r}: use letters, digits and underscores, "
            f"not starting with a digit (at most {MAX_NAME})"
        )
    if name in reserved:
        raise FarmError(f"{name} is set by Farmhand ({reserved[name]}): it cannot be a config var")
    return name


def check_value(name: str, value: str) -> str:
    """A value SSM can hold and a process environment can carry, byte for byte."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise FarmError(f"the value of {name} is not valid UTF-8") from None
    if not value:
        raise FarmError(
            f"{name} has an empty value: SSM Parameter Store cannot hold one (`farm config:unset {name}`)"
        )
    if "\0" in value:
        raise FarmError(f"the value of {name} contains a NUL byte, which no environment variable can hold")
    if size > MAX_VALUE_BYTES:
        raise FarmError(
            f"the value of {name} is {size} bytes: SSM Parameter Store holds at most {MAX_VALUE_BYTES}"
        )
    return value


def parse_assignments(args: Sequence[str], reserved: Mapping[str, str]) -> dict[str, str]:
    """KEY=VALUE arguments (VALUE may hold anything, `=` included) as a dict, every one checked."""
    if not args:
        raise FarmError("no config vars given: farm config:set KEY=VALUE [KEY2=VALUE2 ...]")
    found: dict[str, str] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        if not sep:
            raise FarmError(f"{arg!r} is not KEY=VALUE")
        check_name(name, reserved)
        if name in found:
            raise FarmError(f"{name} is given twice")
        found[name] = check_value(name, value)
    return found


def check_names(names: Sequence[str], reserved: Mapping[str, str], verb: str) -> list[str]:
    if not names:
        raise FarmError(f"no config var names given: farm {verb} KEY [KEY2 ...]")
    seen: list[str] = []
    for name in names:
        check_name(name, reserved)
        if name in seen:
            raise FarmError(f"{name} is given twice")
        seen.append(name)
    return seen


# -- the live config -----------------------------------------------------------------------------


def read(ssm: Any, farm: str) -> dict[str, str]:
    """The farm's config vars, decrypted."""
    prefix = live_path(farm)
    found: dict[str, str] = {}
    with aws_errors():
        for page in ssm.get_paginator("get_parameters_by_path").paginate(
            Path=prefix, Recursive=False, WithDecryption=True
        ):
            found.update({p["Name"].removeprefix(prefix): p["Value"] for p in page["Parameters"]})
    return dict(sorted(found.items()))


def _put(ssm: Any, farm: str, name: str, value: str) -> None:
    ssm.put_parameter(
        Name=live_path(farm) + name,
        Value=value,
        Type="SecureString",
        Overwrite=True,
        Tier=TIER,
        Description=f"Farmhand config var of farm {farm}",
    )


def _delete(ssm: Any, farm: str, names: Iterable[str]) -> None:
    batch = [live_path(farm) + n for n in names]
    for start in range(0, len(batch), 10):  # DeleteParameters takes at most 10 names
        ssm.delete_parameters(Names=batch[start : start + 10])


@dataclass(frozen=True)
class Change:
    """What writing a config does to the live one."""

    before: dict[str, str]
    after: dict[str, str]

    @property
    def set(self) -> list[str]:
        return [n for n, v in self.after.items() if self.before.get(n) != v]

    @property
    def removed(self) -> list[str]:
        return [n for n in self.before if n not in self.after]

    @property
    def empty(self) -> bool:
        return not self.set and not self.removed


def write(ssm: Any, farm: str, change: Change) -> None:
    """Make the live config `change.after`. If AWS fails halfway, put back what was there."""
    done: list[str] = []
    try:
        with aws_errors():
            for name in change.set:
                _put(ssm, farm, name, change.after[name])
                done.append(name)
            _delete(ssm, farm, change.removed)
    except FarmError:
        _undo(ssm, farm, change, done)
        raise


def _undo(ssm: Any, farm: str, change: Change, done: list[str]) -> None:
    try:
        with aws_errors():
            for name in done:
                if name in change.before:
                    _put(ssm, farm, name, change.before[name])
            _delete(ssm, farm, [n for n in done if n not in change.before])
    except FarmError:
        pass  # the first error is the one to report


# -- config versions (what each release ran with) --------------------------------------------------


def _version_parts(ssm: Any, farm: str) -> dict[int, set[tuple[int, int]]]:
    prefix = versions_path(farm)
    parts: dict[int, set[tuple[int, int]]] = {}
    with aws_errors():
        pages = ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [prefix.rstrip("/")]}]
        )
        for page in pages:
            for param in page["Parameters"]:
                match = _PART.match(param["Name"].removeprefix(prefix))
                if match:
                    parts.setdefault(int(match["n"]), set()).add((int(match["i"]), int(match["k"])))
    return parts


def _complete(parts: set[tuple[int, int]]) -> bool:
    counts = {k for _, k in parts}
    return len(counts) == 1 and {i for i, _ in parts} == set(range(1, next(iter(counts)) + 1))


def load_version(ssm: Any, farm: str, number: int) -> dict[str, str]:
    """The config that version NUMBER recorded."""
    prefix = f"{versions_path(farm)}{number}/"
    chunks: dict[int, str] = {}
    with aws_errors():
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix, WithDecryption=True):
            for param in page["Parameters"]:
                match = _PART.match(param["Name"].removeprefix(versions_path(farm)))
                if match:
                    chunks[int(match["i"])] = param["Value"]
    if not chunks or set(chunks) != set(range(1, len(chunks) + 1)):
        raise FarmError(f"config version {number} of farm {farm!r} is missing from SSM Parameter Store")
    data = json.loads("".join(chunks[i] for i in sorted(chunks)))
    return {str(k): str(v) for k, v in data.items()}


def record_version(ssm: Any, farm: str, config: Mapping[str, str]) -> int:
    """The number of a config version holding exactly CONFIG: the newest one if it does, else a new one."""
    for _ in range(20):
        parts = _version_parts(ssm, farm)
        complete = sorted(n for n, p in parts.items() if _complete(p))
        if complete and load_version(ssm, farm, complete[-1]) == dict(config):
            return complete[-1]
        number = max(parts, default=0) + 1
        text = json.dumps(dict(sorted(config.items())), ensure_ascii=True, separators=(",", ":"))
        chunks = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or ["{}"]
        try:
            with aws_errors():
                for index, chunk in enumerate(chunks, start=1):
                    # The first part claims the number: two writers can never share it.
                    ssm.put_parameter(
                        Name=f"{versions_path(farm)}{number}/{index}-of-{len(chunks)}",
                        Value=chunk,
                        Type="SecureString",
                        Overwrite=False,
                        Description=f"Farmhand config version {number} of farm {farm}",
                    )
            return number
        except FarmError as exc:
            if "ParameterAlreadyExists" not in str(exc):
                raise
    raise FarmError("could not take a config version number: too many concurrent changes")


def restore(ssm: Any, farm: str, number: int) -> Change:
    """Make the live config what version NUMBER recorded; what changed."""
    change = Change(before=read(ssm, farm), after=load_version(ssm, farm, number))
    write(ssm, farm, change)
    return change


def describe(change: Change) -> str:
    """Heroku's release description: `Set A, B config vars`, `Remove C config vars`."""
    words = []
    if change.set:
        words.append(f"Set {', '.join(change.set)}")
    if change.removed:
        words.append(f"{'remove' if words else 'Remove'} {', '.join(change.removed)}")
    return " and ".join(words) + " config vars"


def reserved_names(target: Target) -> Mapping[str, str]:
    """The names Farmhand sets itself (group_vars: farmhand_config_reserved), with where each comes from."""
    reserved = target.project.farm_var(target.farm, "farmhand_config_reserved", {})
    return reserved if isinstance(reserved, dict) else {}
