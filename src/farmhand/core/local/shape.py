"""A local farm's shape: which hosts it has, carrying which roles."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from farmhand.core.errors import FarmError

MAX_HOSTS = 24
_ARG = re.compile(r"^(?P<roles>[a-z_]+(?:,[a-z_]+)*)=(?P<count>-?\d+)$")


@dataclass(frozen=True)
class PlannedHost:
    """A host the shape asks for: its Name tag (also its hostname) and its roles."""

    name: str
    roles: tuple[str, ...]

    @property
    def role_tag(self) -> str:
        return ",".join(self.roles)


def parse_args(args: Iterable[str]) -> dict[str, int]:
    """`--shape web=2 --shape worker,cron=1` as a mapping."""
    shape: dict[str, int] = {}
    for arg in args:
        match = _ARG.match(arg.strip())
        if not match:
            raise FarmError(f"invalid shape {arg!r}: use ROLE=COUNT or ROLE,ROLE=COUNT, e.g. web=2")
        if match["roles"] in shape:
            raise FarmError(f"shape names {match['roles']!r} twice")
        shape[match["roles"]] = int(match["count"])
    return shape


def plan(farm: str, shape: Mapping[str, Any], known_roles: Sequence[str]) -> list[PlannedHost]:
    """Validate a shape and name its hosts `<farm>-<roles>-<n>`."""
    if not isinstance(shape, Mapping) or not shape:
        raise FarmError("the farm's shape is empty: give at least one ROLE=COUNT")
    hosts: list[PlannedHost] = []
    seen_roles: set[str] = set()
    for key, count in shape.items():
        roles = tuple(r.strip() for r in str(key).split(","))
        for role in roles:
            if role not in known_roles:
                raise FarmError(f"unknown role {role!r} in shape: roles are {', '.join(known_roles)}")
            if role in seen_roles:
                raise FarmError(f"role {role!r} appears twice in the shape")
            seen_roles.add(role)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise FarmError(f"invalid count {count!r} for {key!r}: use a whole number, 0 or more")
        stem = f"{farm}-{'-'.join(roles)}".replace("_", "-")
        hosts.extend(PlannedHost(f"{stem}-{n}", roles) for n in range(1, count + 1))
    if not hosts:
        raise FarmError("the farm's shape has no hosts: give at least one ROLE=COUNT above 0")
    if len(hosts) > MAX_HOSTS:
        raise FarmError(f"a local farm has at most {MAX_HOSTS} hosts; this shape asks for {len(hosts)}")
    return hosts


def plan_scaled(
    farm: str, shape: Mapping[str, Any], scaled: Mapping[str, int], known_roles: Sequence[str]
) -> list[PlannedHost]:
    """The shape's hosts with `farm ps:scale`'s counts applied: SCALED[role] hosts carrying that role
    alone, named `<farm>-<role>-<n>` (replacing the shape's own count for a key of that role alone)."""
    base = {str(k): v for k, v in shape.items()}
    extra = {role: count for role, count in scaled.items() if role not in base}
    hosts = plan(farm, {**base, **{r: c for r, c in scaled.items() if r in base}} or base, known_roles)
    for role, count in extra.items():
        if role not in known_roles:
            raise FarmError(f"unknown role {role!r} in the farm's scaled counts")
        stem = f"{farm}-{role}".replace("_", "-")
        hosts.extend(PlannedHost(f"{stem}-{n}", (role,)) for n in range(1, count + 1))
    if len(hosts) > MAX_HOSTS:
        raise FarmError(f"a local farm has at most {MAX_HOSTS} hosts; this shape asks for {len(hosts)}")
    return hosts
