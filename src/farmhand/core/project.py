"""The Farmhand project on disk: where it is, its region, roles, farms and local state."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from farmhand.core.errors import FarmError
from farmhand.core.variables import Ansible, read_yaml

FARM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}\Z")  # \Z: `$` would let "demo\n" through
INVENTORY = Path("inventory/aws_ec2.yml")


def validate_farm(name: str | None) -> str:
    """Return a valid farm name or raise a FarmError that says what a valid one looks like."""
    if name is None:
        raise FarmError("no farm given: use -f FARM or set FARMHAND_FARM")
    if not FARM_NAME.match(name):
        raise FarmError(
            f"invalid farm name {name!r}: use 1-31 lowercase letters, digits and underscores, "
            "starting with a letter"
        )
    return name


@dataclass(frozen=True)
class Project:
    """A checkout holding ansible.cfg, inventory/aws_ec2.yml, playbooks/ and group_vars/."""

    root: Path

    @classmethod
    def locate(cls, start: Path | None = None) -> Project:
        """Find the project from FARMHAND_HOME, else from the working directory upwards."""
        home = os.environ.get("FARMHAND_HOME")
        candidates = [Path(home)] if home else [(start or Path.cwd()).resolve()]
        if not home:
            candidates += list(candidates[0].parents)
        for path in candidates:
            if (path / INVENTORY).is_file() and (path / "ansible.cfg").is_file():
                return cls(path.resolve())
        where = home or str(Path.cwd())
        raise FarmError(
            f"no Farmhand project at {where}: run farm inside a checkout "
            "(with ansible.cfg and inventory/aws_ec2.yml) or set FARMHAND_HOME"
        )

    @property
    def inventory(self) -> Path:
        return self.root / INVENTORY

    @property
    def state_dir(self) -> Path:
        """Project-local state that git ignores: caches, the local farm's keys and moto."""
        return self.root / ".farm"

    @cached_property
    def region(self) -> str:
        """The region, set in one place: the `regions` list of the inventory file."""
        data = read_yaml(self.inventory) or {}
        regions = data.get("regions") or []
        if not regions or not isinstance(regions[0], str):
            raise FarmError(f"{self.inventory} sets no `regions`: add the farm's region there")
        return regions[0]

    @cached_property
    def ansible(self) -> Ansible:
        """Ansible's view of the project's variables without asking AWS for hosts: farm-level values."""
        return Ansible(self, parse=False)

    @cached_property
    def roles(self) -> tuple[str, ...]:
        """The host roles a `role` tag may name (group_vars/all: farmhand_roles)."""
        return tuple(self.ansible.farm_var(None, "farmhand_roles") or ())

    @cached_property
    def app_roles(self) -> tuple[str, ...]:
        """The roles whose hosts run the app's code (group_vars/all: farmhand_app_roles)."""
        return tuple(self.ansible.farm_var(None, "farmhand_app_roles") or ())

    def configured_farms(self) -> set[str]:
        """Farms that have a group_vars/farm_<farm>/ directory or file."""
        base = self.root / "group_vars"
        names = {p.name.removeprefix("farm_").removesuffix(".yml") for p in base.glob("farm_*")}
        return {n for n in names if FARM_NAME.match(n)}

    def farm_var(self, farm: str, name: str, default: Any = None, role: str | None = None) -> Any:
        """A variable as Ansible gives it to a host of FARM (and of ROLE): group_vars with Ansible's
        precedence, rendered, vault values decrypted (farmhand.core.variables)."""
        return self.ansible.farm_var(farm, name, default, role=role)

    def validate_role(self, role: str) -> str:
        if role not in self.roles:
            raise FarmError(f"unknown role {role!r}: roles are {', '.join(self.roles)}")
        return role
