"""`farm ps:scale`: how many hosts run each process type, and what changes when that changes.

This module checks the request and plans it before anything changes (a bad request is one
FarmError, exit 2, nothing touched): which roles grow, which shrink, which hosts leave. The
hosts themselves come and go through farmhand.core.scaling.instances (an Auto Scaling group or
tagged instances on AWS, the local farm's containers otherwise); farmhand.core.scaling.steps
does the converge, deploy and drain around them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host

# The process types `ps:scale` changes (Heroku's dyno types): the roles whose hosts run the app's
# processes and can come and go. Databases, load balancers and cron are not scaled this way.
SCALABLE = ("web", "worker")
# The fewest hosts a type may keep: deploys and the load balancer need a web host.
MINIMUM = {"web": 1, "worker": 0}
MAX_STEP = 20  # hosts added or removed in one command: a typo like worker=200 is refused
_ARG = re.compile(r"^(?P<type>[^=]*)=(?P<count>.*)$")


@dataclass(frozen=True)
class Bounds:
    """Limits on a type's host count: the Auto Scaling group's min and max, where there is one."""

    minimum: int = 0
    maximum: int | None = None
    source: str = ""  # what sets them, for the error message (e.g. "Auto Scaling group sc-worker")


@dataclass
class RoleChange:
    """One process type's change: from how many hosts to how many, which hosts leave."""

    role: str
    current: int
    wanted: int
    leaving: list[Host] = field(default_factory=list)

    @property
    def adds(self) -> int:
        return max(self.wanted - self.current, 0)

    @property
    def removes(self) -> int:
        return max(self.current - self.wanted, 0)

    def describe(self) -> str:
        return f"{self.role} {self.current} -> {self.wanted}"


def parse_requests(args: Sequence[str], known_roles: Iterable[str]) -> dict[str, int]:
    """`worker=3 web=2` as {"worker": 3, "web": 2}; every malformed argument is a FarmError."""
    if not args:
        raise FarmError("give at least one TYPE=COUNT, e.g. farm ps:scale -f FARM worker=2")
    known = set(known_roles)
    wanted: dict[str, int] = {}
    for arg in args:
        match = _ARG.match(arg)
        if not match:
            raise FarmError(f"invalid argument {arg!r}: use TYPE=COUNT, e.g. worker=2")
        kind, count = match["type"].strip(), match["count"].strip()
        if kind not in SCALABLE:
            if kind in known:
                raise FarmError(
                    f"role {kind!r} is not a process type ps:scale changes: types are {', '.join(SCALABLE)}"
                )
            raise FarmError(f"unknown process type {kind!r}: types are {', '.join(SCALABLE)}")
        if kind in wanted:
            raise FarmError(f"{kind} is given twice")
        if not re.fullmatch(r"-?\d+", count):
            raise FarmError(f"invalid count {count!r} for {kind}: use a whole number, 0 or more")
        number = int(count)
        if number < 0:
            raise FarmError(f"invalid count {number} for {kind}: a count is 0 or more")
        wanted[kind] = number
    return wanted


def removable(hosts: Sequence[Host], role: str, protected: Iterable[str] = ()) -> list[Host]:
    """Hosts of ROLE that may leave the farm, the first to go first.

    Only hosts that carry ROLE alone (a `db,worker,cron` host stays: its other roles need it) and
    that are not protected (the host running the farm's Redis). Newest names first: `-3` before `-2`.
    """
    keep = set(protected)
    alone = [h for h in hosts if h.roles == (role,) and h.name not in keep]
    return sorted(alone, key=lambda h: _natural(h.name), reverse=True)


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def plan(
    farm: str,
    wanted: dict[str, int],
    hosts: Sequence[Host],
    bounds: dict[str, Bounds],
    protected: Iterable[str] = (),
) -> list[RoleChange]:
    """Check every requested count against the farm and its limits; the changes, or a FarmError."""
    protected = list(protected)
    changes: list[RoleChange] = []
    for role, count in wanted.items():
        with_role = [h for h in hosts if role in h.roles]
        change = RoleChange(role, len(with_role), count)
        limit = bounds.get(role, Bounds())
        if count < MINIMUM.get(role, 0):
            raise FarmError(f"{role} needs at least {MINIMUM[role]} host: refusing {role}={count}")
        if count < change.current and count < limit.minimum:
            raise FarmError(
                f"cannot scale {role} to {count}: the minimum is {limit.minimum} ({limit.source}); "
                f"lower it with farm ps:autoscale -f {farm} {role} --min N"
            )
        if limit.maximum is not None and count > change.current and count > limit.maximum:
            raise FarmError(
                f"cannot scale {role} to {count}: the maximum is {limit.maximum} ({limit.source})"
            )
        if abs(count - change.current) > MAX_STEP:
            raise FarmError(
                f"{role}={count} changes {abs(count - change.current)} hosts at once: "
                f"at most {MAX_STEP} per command"
            )
        if change.removes:
            candidates = removable(with_role, role, protected)
            if len(candidates) < change.removes:
                others = sorted({",".join(h.roles) for h in with_role if h.roles != (role,)})
                held = [h for h in with_role if h.name in protected]
                why = []
                if others:
                    why.append(f"hosts tagged {', '.join(others)} carry other roles too")
                if held:
                    why.append(f"{', '.join(h.name for h in held)} runs the farm's Redis")
                raise FarmError(
                    f"cannot scale {role} to {count}: only {len(candidates)} of its {change.current} hosts "
                    f"can leave ({'; '.join(why) or 'none carries ' + role + ' alone'})"
                )
            change.leaving = candidates[: change.removes]
        changes.append(change)
    if all(c.current == c.wanted for c in changes):
        now = ", ".join(f"{c.role}={c.current}" for c in changes)
        raise FarmError(f"the farm runs {now} already: nothing to change")
    return [c for c in changes if c.current != c.wanted]
