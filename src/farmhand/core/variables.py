"""Variables as Ansible resolves them: one in-process Ansible (its DataLoader, InventoryManager,
VariableManager and Templar, set up as `ansible-playbook` sets them up) per command.

The CLI never merges group_vars itself. A host's variable is what `ansible-playbook` gives that
host: inventory variables and group_vars with Ansible's precedence (deeper groups win: every
`farm_<farm>` is a child of `farms`, so a farm's value overrides a role's), templates rendered,
inline `!vault` values decrypted with the vault password ansible.cfg or
ANSIBLE_VAULT_PASSWORD_FILE configures. A farm-level value (a farm may have no host yet) is what a
host of the farm would get: a stand-in host in `farm_<farm>` (and `role_<role>` when a role is
asked), with the role's defaults when its play is asked for.

Rules that depend on which hosts a farm has (its Redis hosts, its active cron host) are read from
a real host of the parsed inventory: Ansible computes them there (group_vars/all/*.yml), and only
there.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from farmhand.core.errors import FarmError

if TYPE_CHECKING:
    from farmhand.core.project import Project

# The groups `inventory/aws_ec2.yml` builds: `farm_<farm>` (children of FARMS_GROUP) and `role_<role>`.
FARMS_GROUP = "farms"
# The stand-in host that farm-level values are resolved for (a name no EC2 host can have).
STAND_IN = "farmhand.farm-level"
VAULT_HELP = (
    "set vault_password_file in ansible.cfg ([defaults]) or ANSIBLE_VAULT_PASSWORD_FILE to a file "
    "holding the vault password"
)
_MISSING = object()


class TemplateFailed(FarmError):
    """A variable's template that Ansible cannot render (an undefined variable, a bad filter...)."""


_VAULT_SECRETS: list[Any] | None = None
# One Ansible call at a time in this process: each changes the process's working directory and
# environment while it runs (commands ask hosts from threads: farmhand.fanout).
_LOCK = threading.RLock()


@contextlib.contextmanager
def _in_project(root: Path, env: Mapping[str, str] | None, quiet: bool = False) -> Iterator[io.StringIO]:
    """Run Ansible as it runs from the project root, in ENV: ansible.cfg's relative paths (its
    caches under .farm/) resolve there and the inventory plugin's boto3 sees the target's AWS.
    QUIET: what Ansible prints (the inventory plugin's warnings) is kept, not shown: an error says
    what went wrong (only while nothing else prints: the streams are the process's)."""
    with _LOCK:
        saved_cwd, saved_env = os.getcwd(), dict(os.environ)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        os.environ.setdefault("ANSIBLE_CONFIG", str(root / "ansible.cfg"))
        os.chdir(root)
        # Ansible's display, first made here, wraps the process's real stdout and stderr: not the
        # buffers that keep what it prints while it loads.
        from ansible.utils import display  # noqa: F401

        out = io.StringIO()
        quieted = (
            (contextlib.redirect_stderr(out), contextlib.redirect_stdout(out))
            if quiet
            else (contextlib.nullcontext(), contextlib.nullcontext())
        )
        try:
            with quieted[0], quieted[1]:
                yield out
        finally:
            os.chdir(saved_cwd)
            if saved_env != os.environ:
                os.environ.clear()
                os.environ.update(saved_env)


def _plugin_failure(output: str) -> str:
    """The reason the first inventory plugin tried gave in Ansible's warnings, if it failed."""
    for line in output.splitlines():
        _, found, why = line.partition("Failed to parse inventory with ")
        if found and "plugin: " in why:
            return why.split("plugin: ", 1)[1].strip()
    return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def plain(value: Any) -> Any:
    """VALUE without Ansible's data tags (its tagged str, list, dict... are subclasses): plain Python."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return value


class Ansible:
    """The project as Ansible sees it, for one command: its inventory (parsed, or not: only stand-in
    hosts then, for farm-level values without asking AWS) and every host's variables."""

    def __init__(
        self,
        project: Project,
        env: Mapping[str, str] | None = None,
        parse: bool = True,
        refresh: bool = False,
    ) -> None:
        global _VAULT_SECRETS
        self.project = project
        self.env = dict(env) if env is not None else None
        with _in_project(project.root, self.env, quiet=True) as out:
            from ansible import constants as C
            from ansible.cli import CLI
            from ansible.errors import AnsibleError
            from ansible.inventory.manager import InventoryManager
            from ansible.parsing.dataloader import DataLoader
            from ansible.plugins.loader import init_plugin_loader
            from ansible.vars.manager import VariableManager

            if _VAULT_SECRETS is None:  # the first Ansible of this process
                init_plugin_loader()
            self.loader = DataLoader()
            self.loader.set_basedir(str(project.root))
            try:
                # As ansible-playbook does: the vault ids and password file ansible.cfg or the
                # environment configure (DEFAULT_VAULT_IDENTITY_LIST, DEFAULT_VAULT_PASSWORD_FILE).
                # Ansible keeps them for the process (its VaultSecretsContext): read them once.
                if _VAULT_SECRETS is None:
                    _VAULT_SECRETS = CLI.setup_vault_secrets(
                        self.loader, vault_ids=list(C.DEFAULT_VAULT_IDENTITY_LIST), auto_prompt=False
                    )
                self.loader.set_vault_secrets(_VAULT_SECRETS)
                self.inventory = InventoryManager(
                    loader=self.loader, sources=[str(project.inventory)], parse=parse, cache=not refresh
                )
            except AnsibleError as exc:
                raise FarmError(f"Ansible cannot load {project.inventory}: {_first_line(exc)}") from None
            if parse and not self.inventory.list_hosts("all") and "fail" in out.getvalue().lower():
                # The plugin could not list the instances (AWS unreachable, no credentials): Ansible
                # only warns, and an empty inventory would read as a farm without hosts.
                why = _plugin_failure(out.getvalue()) or _last_line(out.getvalue())
                raise FarmError(f"Ansible cannot load {project.inventory}: {why}")
            self.variables = VariableManager(loader=self.loader, inventory=self.inventory)
        self._cache: dict[str, dict[str, Any]] = {}

    # -- hosts -----------------------------------------------------------------------------------

    def group_hosts(self, group: str) -> list[str]:
        """The names of the hosts in GROUP (none if there is no such group)."""
        found = self.inventory.groups.get(group)
        return sorted(h.name for h in found.get_hosts()) if found is not None else []

    def inventory_vars(self, host: str) -> dict[str, Any]:
        """HOST's own inventory variables (what the inventory plugin sets: aws_tags, aws_instance_id...)."""
        return plain(self.inventory.get_host(host).get_vars())

    # -- variables -------------------------------------------------------------------------------

    def host_vars(self, host: str) -> HostVariables:
        """HOST's variables as a play on it sees them, each rendered when read."""
        return HostVariables(self, host)

    def _vars(self, host: str, play: Any = None) -> dict[str, Any]:
        key = host if play is None else f"{host}\0{id(play)}"
        if key not in self._cache:
            with _in_project(self.project.root, self.env):
                from ansible.errors import AnsibleError

                found = self.inventory.get_host(host)
                if found is None:
                    raise FarmError(f"unknown host {host!r}: the inventory does not list it")
                try:
                    self._cache[key] = self.variables.get_vars(play=play, host=found, include_hostvars=True)
                except AnsibleError as exc:
                    vault = _vault_cause(exc)
                    if vault is not None:  # a group_vars file encrypted whole
                        raise FarmError(_vault_message(f"the variables of {host}", vault)) from None
                    why = _first_line(exc)
                    raise FarmError(f"Ansible cannot read the variables of {host}: {why}") from None
        return self._cache[key]

    def raw(self, host: str, name: str, default: Any = _MISSING, play: Any = None) -> Any:
        """NAME for HOST as Ansible merged it, not rendered (KeyError if undefined and no default)."""
        values = self._vars(host, play)
        if name in values:
            return values[name]
        if default is _MISSING:
            raise KeyError(name)
        return default

    def var(self, host: str, name: str, default: Any = None, play: Any = None) -> Any:
        """NAME as Ansible gives it to HOST: rendered, vault values decrypted; DEFAULT if undefined."""
        values = self._vars(host, play)
        if name not in values:
            return default
        return self.render(values[name], values, name, host)

    def render(self, value: Any, variables: Mapping[str, Any], name: str, host: str) -> Any:
        """VALUE rendered by Ansible's templar with VARIABLES; an error is one line naming NAME and HOST."""
        with _in_project(self.project.root, self.env):
            return _template(self.loader, value, variables, name, host)

    # -- farm-level values -------------------------------------------------------------------

    def stand_in(self, farm: str | None, role: str | None = None) -> str:
        """A host in farm_<farm> (and role_<role>) that is no real host: what a host of the farm
        gets when it carries no host variables of its own (no farm: a host in `all` only). Added
        to this in-memory inventory only, never to one whose hosts are read."""
        name = f"{STAND_IN}.{farm or ''}.{role or ''}"
        if self.inventory.get_host(name) is None:
            with _in_project(self.project.root, self.env):
                groups = [*([f"farm_{farm}"] if farm else []), *([f"role_{role}"] if role else [])]
                self.inventory.add_host(name)
                for group in groups:
                    self.inventory.add_group(group)
                    self.inventory.add_host(name, group=group)
                if farm:
                    # As inventory/aws_ec2.yml's keyed group makes it: farm_<farm> under `farms`.
                    self.inventory.add_group(FARMS_GROUP)
                    self.inventory.groups[FARMS_GROUP].add_child_group(self.inventory.groups[f"farm_{farm}"])
                # What the aws_ec2 plugin sets and group_vars/all reads (farmhand_farm, farmhand_local).
                self.inventory.get_host(name).set_variable(
                    "aws_tags", {"farm": farm or "", "role": role or ""}
                )
        return name

    def farm_var(self, farm: str | None, name: str, default: Any = None, role: str | None = None) -> Any:
        """NAME as a host of FARM (with ROLE) gets it from group_vars, rendered."""
        return self.var(self.stand_in(farm, role), name, default)

    def role_play(self, roles: tuple[str, ...], hosts: str) -> Any:
        """A play applying ROLES on HOSTS, as site.yml's: its variables add the roles' defaults."""
        with _in_project(self.project.root, self.env):
            from ansible.errors import AnsibleError
            from ansible.playbook.play import Play

            try:
                return Play.load(
                    {"hosts": hosts, "gather_facts": False, "roles": list(roles)},
                    variable_manager=self.variables,
                    loader=self.loader,
                )
            except AnsibleError as exc:
                raise FarmError(f"cannot load role {', '.join(roles)}: {_first_line(exc)}") from None


class HostVariables(Mapping[str, Any]):
    """One host's variables as Ansible sees them; each value rendered when read."""

    def __init__(self, ansible: Ansible, host: str) -> None:
        self._ansible = ansible
        self._host = host

    def __getitem__(self, name: str) -> Any:
        value = self._ansible.var(self._host, name, _MISSING)
        if value is _MISSING:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._ansible._vars(self._host)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ansible._vars(self._host))

    def __len__(self) -> int:
        return len(self._ansible._vars(self._host))


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def _template(loader: Any, value: Any, variables: Mapping[str, Any], name: str, host: str) -> Any:
    from ansible.errors import AnsibleError
    from ansible.template import Templar

    try:
        return plain(Templar(loader=loader, variables=variables).template(value))
    except AnsibleError as exc:
        vault = _vault_cause(exc)
        if vault is not None:
            raise FarmError(_vault_message(name, vault)) from None
        raise TemplateFailed(f"cannot work out {name} for {host}: {_first_line(exc)}") from None


def render(value: Any, variables: Mapping[str, Any], name: str, host: str) -> Any:
    """VALUE, a template written in code or given as a plain mapping (not read by Ansible from the
    project), rendered by Ansible's templar with VARIABLES as a play on HOST would."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import trust_as_template

    def trusted(item: Any) -> Any:
        return trust_as_template(item) if isinstance(item, str) else item

    return _template(DataLoader(), trusted(value), {k: trusted(v) for k, v in variables.items()}, name, host)


def _vault_cause(exc: BaseException) -> BaseException | None:
    """The vault error behind EXC (Ansible wraps it in template and variable errors), if any: an
    AnsibleVaultError, or the templar's UndecryptableVaultError for an inline `!vault` value."""
    from ansible._internal._templating._jinja_common import UndecryptableVaultError
    from ansible.parsing.vault import AnsibleVaultError

    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None or isinstance(seen, (AnsibleVaultError, UndecryptableVaultError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _vault_message(name: str, exc: BaseException) -> str:
    where = _origin(exc)
    return (
        f"{name}{' in ' + where if where else ''} is encrypted with ansible-vault and no vault password "
        f"can decrypt it: {VAULT_HELP}"
    )


def _origin(exc: BaseException) -> str:
    """The file (and line) of the value an Ansible error is about, when Ansible knows it."""
    from ansible._internal._datatag._tags import Origin  # Ansible's record of where a value was read

    origin = Origin.get_tag(getattr(exc, "obj", None))
    if origin is None or not origin.path:
        return ""
    return f"{origin.path}:{origin.line_num}" if origin.line_num else str(origin.path)


# -- plain reads, where there is no host to ask yet ----------------------------------------------


class _VaultLoader(yaml.SafeLoader):
    """YAML as Ansible writes it: an inline `!vault` value is kept as its ciphertext."""


class Vaulted(str):
    """An inline `!vault` value, still encrypted (a plain read does not decrypt)."""


_VaultLoader.add_constructor("!vault", lambda loader, node: Vaulted(loader.construct_scalar(node)))


def read_yaml(path: Path) -> Any:
    """A YAML file as Ansible's DataLoader reads it (`!vault` values accepted); one-line errors."""
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_VaultLoader)
    except yaml.YAMLError as exc:
        raise FarmError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
