"""The app's contract, as Heroku's: the `Procfile` at the app's root names its process types, and
the farm's formation (`farmhand_formation`) says which hosts run them.

    web: bundle exec unicorn -p $PORT -c ./config/unicorn.rb
    worker: bundle exec sidekiq -q critical -q default -c 5 -t 25
    notifier: bin/rails runner 'Notifier.run'
    release: bin/rails db:migrate

- `web` is served on the web hosts by the `rails_unicorn` role: Unicorn runs the app's config.ru with
  Farmhand's own Unicorn config (the line's command is not run as written), so the app's bundle must
  hold the unicorn gem, as Heroku's apps hold their web server.
- `release` runs once per deploy, on the first web host with the new release, before anything
  switches (Heroku's release phase). Without it: `bundle exec rails db:migrate`.
- A command that runs Sidekiq (`sidekiq ...` or `bundle exec sidekiq ...`) is a Sidekiq process type:
  the `sidekiq_worker` role runs it with its drain contract (quieted first, a stop waits for running
  jobs up to its timeout). Its settings are read as Sidekiq reads them: the line's `-q`, `-c` and
  `-t` over the app's Sidekiq config file (`-C PATH`, else `config/sidekiq.yml` or
  `config/sidekiq.yml.erb` when the release has one), whose `<RAILS_ENV>:` section is over its top
  level (`with_sidekiq_configs`). Farmhand passes what it read as flags, so the values it needs (the
  timeout its stops wait for) are the ones Sidekiq runs with, and `-C` as given, so the file's other
  settings apply. No other option is accepted.
- Any other command runs as a systemd service in the release, stopped with TERM.

The formation places each process type other than web and release on a role's hosts, with a count
of processes per host; a type it does not name runs once on each worker host. Every process type
needs hosts and every web or worker host a process type, or the deploy stops before it changes
anything. An app without a Procfile keeps the platform's defaults: web, the configured Sidekiq
processes (`sidekiq_worker_processes`) and migrations as its release command.

One implementation for the CLI's checks and for the playbooks (`plugins/filter/procfile.py` calls
these functions), so a deploy by hand and `farm deploy` read a Procfile alike.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from farmhand.core.errors import FarmError

FILE = "Procfile"
WEB, RELEASE = "web", "release"
DEFAULT_RELEASE_COMMAND = "bundle exec rails db:migrate"
# The roles whose hosts run process types: web (Unicorn) and worker (everything else).
PROCESS_ROLES = ("web", "worker")
DEFAULT_ROLE = "worker"
MAX_PER_HOST = 32

# A type's name becomes part of systemd unit names and Sidekiq's process tag: lowercase letters,
# digits and underscores (Heroku also takes upper case and dashes; the error says so).
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_LINE = re.compile(r"(?P<name>[^:\s]+)\s*:(?P<command>.*)")
# Sidekiq's options Farmhand reads (sidekiq_worker sets the environment, the tag and the rest).
_SIDEKIQ_OPTIONS = {
    "-q": "queues",
    "--queue": "queues",
    "-c": "concurrency",
    "--concurrency": "concurrency",
    "-t": "timeout",
    "--timeout": "timeout",
    "-e": "environment",
    "--environment": "environment",
    "-C": "config",
    "--config": "config",
}
# The settings a Sidekiq type takes from the line or its config file, and their flags (for errors).
_SIDEKIQ_SETTINGS = {"queues": "-q", "concurrency": "-c", "timeout": "-t"}
# The config files Sidekiq 6 reads when its command line names none, the first one the release has.
SIDEKIQ_CONFIG_DEFAULTS = ("config/sidekiq.yml", "config/sidekiq.yml.erb")
# ERB in a Sidekiq config file: Sidekiq renders it before the YAML is read; Farmhand cannot.
_ERB_COMMENT = re.compile(r"<%#.*?%>", re.DOTALL)
_ERB_OUTPUT = re.compile(r"<%-?=.*?-?%>", re.DOTALL)
_ERB_MARK = "farmhand-erb-value"


class ProcfileError(FarmError):
    """A Procfile or formation Farmhand cannot run: one line, exit code 2, nothing changed."""


@dataclass(frozen=True)
class ProcessType:
    """One line of the Procfile: its type, its command, and how Farmhand runs it (`kind`: web,
    release, sidekiq or service). A Sidekiq type carries the options its command gives."""

    name: str
    command: str
    kind: str
    sidekiq: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Procfile:
    """The app's process types in the Procfile's order; `declared` is False for an app without one."""

    types: dict[str, ProcessType]
    declared: bool = True

    @property
    def release_command(self) -> str:
        release = self.types.get(RELEASE)
        return release.command if release else DEFAULT_RELEASE_COMMAND

    @property
    def process_types(self) -> list[ProcessType]:
        """The types that run on worker hosts: every one but web and release."""
        return [t for t in self.types.values() if t.kind not in (WEB, RELEASE)]


def parse(text: str | None) -> Procfile:
    """The Procfile TEXT (None: the app has none), or a ProcfileError naming the line."""
    if text is None:
        return Procfile(types={}, declared=False)
    types: dict[str, ProcessType] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise ProcfileError(f"{FILE} line {number} is not `type: command`: {_quote(line)}")
        name, command = match["name"], match["command"].strip()
        if not _NAME.fullmatch(name):
            raise ProcfileError(
                f"{FILE} line {number}: process type {name!r} must be lowercase letters, digits and _ "
                "(it names the type's systemd units)"
            )
        if name in types:
            raise ProcfileError(f"{FILE} line {number} declares {name!r} again (it is on an earlier line)")
        if not command:
            raise ProcfileError(f"{FILE} line {number}: process type {name!r} has no command")
        types[name] = _process_type(name, command, number)
    if not types:
        raise ProcfileError(f"{FILE} declares no process type: write one `type: command` per line")
    if WEB not in types:
        raise ProcfileError(
            f"{FILE} declares no web process type ({', '.join(types)}): Farmhand serves the app on its "
            "web hosts, add `web: bundle exec unicorn -p $PORT`"
        )
    return Procfile(types=types)


def _quote(text: str, width: int = 60) -> str:
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _process_type(name: str, command: str, number: int) -> ProcessType:
    if name in (WEB, RELEASE):
        return ProcessType(name=name, command=command, kind=name)
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ProcfileError(f"{FILE} line {number} ({name}): {exc} in {_quote(command)}") from None
    program = argv[2:] if argv[:2] == ["bundle", "exec"] else argv
    if program and program[0] == "sidekiq":
        return ProcessType(
            name=name,
            command=command,
            kind="sidekiq",
            sidekiq=_sidekiq(name, program[1:], number),
            line=number,
        )
    return ProcessType(name=name, command=command, kind="service", line=number)


def _sidekiq(name: str, args: list[str], number: int) -> dict[str, Any]:
    """The options of a Sidekiq command line: queues (in order, "name,weight" kept), concurrency,
    timeout, config (-C: the app's file, relative to its root); the environment is Farmhand's
    (farmhand_rails_env). Queues default to Sidekiq's `default` unless a config file may name them
    (with_sidekiq_configs)."""
    where = f"{FILE} line {number} ({name})"
    options: dict[str, Any] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        flag, _, inline = arg.partition("=") if arg.startswith("--") else (arg[:2], "", arg[2:])
        key = _SIDEKIQ_OPTIONS.get(flag)
        if key is None:
            raise ProcfileError(
                f"{where}: Farmhand runs Sidekiq with -q, -c, -t and -C from the Procfile; "
                f"{arg} is not one of them"
            )
        if inline:
            value = inline
        elif rest:
            value = rest.pop(0)
        else:
            raise ProcfileError(f"{where}: sidekiq {flag} needs a value")
        if key == "queues":
            options.setdefault("queues", []).append(value)
        elif key in ("concurrency", "timeout"):
            if not value.isdigit() or int(value) < 1:
                raise ProcfileError(
                    f"{where}: sidekiq {flag} takes a whole number of at least 1, not {value!r}"
                )
            options[key] = int(value)
        elif key == "config":
            options["config"] = _app_path(value, f"{where}: sidekiq {flag}")
    return options


# A config file's path as a systemd unit's command line can carry it without quoting.
_APP_PATH = re.compile(r"[A-Za-z0-9._/-]+")


def _app_path(value: str, where: str) -> str:
    """VALUE as a path in the app (relative to its root, normalised), or a ProcfileError."""
    path = posixpath.normpath(value)
    if (
        posixpath.isabs(path)
        or path == ".."
        or path.startswith("../")
        or path == "."
        or not _APP_PATH.fullmatch(path)
    ):
        raise ProcfileError(
            f"{where} must name a file in the app, relative to its root (letters, digits, . _ - /), "
            f"not {value!r}"
        )
    return path


def _config_candidates(process: ProcessType) -> list[str]:
    """The files a Sidekiq type's settings may come from, in the order Sidekiq looks: its -C (which
    must be there), else the files Sidekiq 6 reads by itself, when the line leaves a setting to them."""
    config = process.sidekiq.get("config")
    if config:
        return [config]
    if all(process.sidekiq.get(key) for key in _SIDEKIQ_SETTINGS):
        return []
    return list(SIDEKIQ_CONFIG_DEFAULTS)


def sidekiq_config_paths(procfile: Procfile) -> list[str]:
    """The app's files its Sidekiq types may read settings from (each type's _config_candidates),
    once each: what a deploy reads from the commit and a worker host from the live release."""
    paths: list[str] = []
    for process in procfile.types.values():
        if process.kind == "sidekiq":
            paths.extend(p for p in _config_candidates(process) if p not in paths)
    return paths


def with_sidekiq_configs(
    procfile: Procfile, files: Mapping[str, str | None], rails_env: str = "production"
) -> Procfile:
    """PROCFILE with each Sidekiq type's queues, concurrency and timeout read as Sidekiq reads them:
    the line's flags, else its config file's RAILS_ENV section, else the file's top level (FILES:
    the app's text of each of sidekiq_config_paths, None where the release has no such file); queues
    default to `default`, the rest to the sidekiq_worker role's defaults. A file named by -C must be
    there; a file that does not parse, or a setting Farmhand needs from it in a form it cannot read
    (ERB, a wrong type), is a ProcfileError naming the file and the setting."""
    types = dict(procfile.types)
    for name, process in procfile.types.items():
        if process.kind != "sidekiq":
            continue
        options = dict(process.sidekiq)
        where = f"{FILE} line {process.line} ({name})"
        present = [(p, files[p]) for p in _config_candidates(process) if files.get(p) is not None]
        path, text = present[0] if present else ("", None)
        if options.get("config") and text is None:
            raise ProcfileError(f"{where}: sidekiq -C {options['config']}: the app has no such file")
        missing = [key for key in _SIDEKIQ_SETTINGS if not options.get(key)]
        if text is not None and missing:
            settings = _sidekiq_file(path, text, rails_env, missing, where)
            options.update({key: settings[key] for key in missing if key in settings})
        options["queues"] = options.get("queues") or ["default"]
        types[name] = replace(process, sidekiq=options)
    return replace(procfile, types=types)


def _sidekiq_file(path: str, text: str, rails_env: str, wanted: list[str], where: str) -> dict[str, Any]:
    """The WANTED settings a Sidekiq config file gives (its RAILS_ENV section over its top level;
    keys with or without Sidekiq's leading colon), checked as the line's flags are."""
    rendered = _ERB_OUTPUT.sub(_ERB_MARK, _ERB_COMMENT.sub("", text))
    if "<%" in rendered:
        flags = " ".join(_SIDEKIQ_SETTINGS[key] for key in wanted)
        raise ProcfileError(
            f"{where}: {path} has ERB code Farmhand cannot read: give {flags} on the Procfile line"
        )
    try:
        data = yaml.safe_load(rendered)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise ProcfileError(f"{where}: {path} is not YAML Sidekiq can read{at}") from None
    data = _colon_keys(data if data is not None else {}, f"{where}: {path}")
    section = data.get(rails_env)
    if section is not None:
        data = {**data, **_colon_keys(section, f"{where}: {path} {rails_env}:")}
    settings: dict[str, Any] = {}
    for key in wanted:
        if key not in data or data[key] is None:
            continue
        value, flag = data[key], _SIDEKIQ_SETTINGS[key]
        if _ERB_MARK in str(value):
            raise ProcfileError(
                f"{where}: {path} sets {key} with ERB, which Farmhand cannot evaluate: give {flag} on the "
                "Procfile line"
            )
        settings[key] = (
            _file_queues(value, f"{where}: {path}")
            if key == "queues"
            else _file_number(value, key, f"{where}: {path}")
        )
    return settings


def _colon_keys(data: Any, where: str) -> dict[str, Any]:
    """A mapping of Sidekiq's config with its keys as Sidekiq symbolises them (`:timeout` is `timeout`)."""
    if not isinstance(data, Mapping):
        raise ProcfileError(f"{where} must be a mapping of Sidekiq's settings, not {type(data).__name__}")
    return {str(k).removeprefix(":"): v for k, v in data.items()}


def _file_number(value: Any, key: str, where: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or not str(value).isdigit()
        or int(value) < 1
    ):
        raise ProcfileError(f"{where}: {key} must be a whole number of at least 1, not {value!r}")
    return int(value)


def _file_queues(value: Any, where: str) -> list[str]:
    """Sidekiq's `queues:` (names, or [name, weight] pairs) as -q takes them ("name,weight")."""
    if not isinstance(value, list) or not value:
        raise ProcfileError(f"{where}: queues must be a list of queue names or [name, weight] pairs")
    queues: list[str] = []
    for entry in value:
        pair = entry if isinstance(entry, list) else [entry]
        if not 1 <= len(pair) <= 2 or not isinstance(pair[0], str) or not pair[0]:
            raise ProcfileError(f"{where}: queue {entry!r} is not a name or a [name, weight] pair")
        if len(pair) == 2 and (isinstance(pair[1], bool) or not isinstance(pair[1], int) or pair[1] < 1):
            raise ProcfileError(
                f"{where}: queue {pair[0]!r} has weight {pair[1]!r}: a whole number of at least 1"
            )
        if any(q.split(",")[0] == pair[0] for q in queues):
            raise ProcfileError(f"{where}: queue {pair[0]!r} is listed twice")
        queues.append(",".join(str(part) for part in pair))
    return queues


@dataclass(frozen=True)
class Placement:
    """Where a process type runs: on each host of ROLE, COUNT processes per host."""

    type: ProcessType
    role: str
    count: int


def formation(procfile: Procfile, declared: Mapping[str, Any] | None) -> list[Placement]:
    """The placements of PROCFILE's process types (worker hosts run them) by the farm's
    farmhand_formation DECLARED ({type: {role: R, count: N}}; a type it does not name: once per
    worker host), or a ProcfileError. Web runs on the web hosts, release on none."""
    if not isinstance(declared or {}, Mapping):
        raise ProcfileError("farmhand_formation must map process types to {role: ROLE, count: N}")
    declared = dict(declared or {})
    known = list(procfile.types)
    for name, spec in declared.items():
        if name == RELEASE:
            raise ProcfileError("farmhand_formation places release: it runs once per deploy, on no host")
        if name not in procfile.types:
            having = f"it declares {', '.join(known)}" if procfile.declared else "the app has none"
            raise ProcfileError(
                f"farmhand_formation places {name!r}, which the Procfile does not declare ({having})"
            )
        if not isinstance(spec, Mapping) or set(spec) - {"role", "count"}:
            raise ProcfileError(f"farmhand_formation {name!r} must be {{role: ROLE, count: N}}, not {spec!r}")
    placements = []
    for process in procfile.process_types:
        spec = declared.get(process.name, {})
        role = str(spec.get("role", DEFAULT_ROLE))
        count = spec.get("count", 1)
        if role != DEFAULT_ROLE:
            raise ProcfileError(
                f"farmhand_formation puts {process.name!r} on role {role!r}: process types other than web "
                f"run on {DEFAULT_ROLE} hosts"
            )
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_PER_HOST:
            raise ProcfileError(
                f"farmhand_formation {process.name!r}: count is processes per host, "
                f"1 to {MAX_PER_HOST}, not {count!r}"
            )
        placements.append(Placement(type=process, role=role, count=count))
    if WEB in declared and (set(declared[WEB]) - {"role"} or declared[WEB].get("role", WEB) != WEB):
        raise ProcfileError(
            "farmhand_formation: web runs on the web hosts (one Unicorn per host), nothing else"
        )
    return placements


def check_hosts(
    placements: list[Placement], procfile: Procfile, hosts: Mapping[str, list[str]], farm: str
) -> None:
    """Every placed type has hosts, and every worker host runs a type: else a ProcfileError.
    HOSTS: the farm's hosts per role (web, worker). An app without a Procfile is not checked here:
    its workers are sidekiq_worker_processes."""
    if not procfile.declared:
        return
    for placement in placements:
        if not hosts.get(placement.role):
            raise ProcfileError(
                f"process type {placement.type.name!r} has no hosts: "
                f"farm {farm!r} has no {placement.role} hosts "
                f"(farm ps:scale -f {farm} {placement.role}=1)"
            )
    workers = hosts.get(DEFAULT_ROLE, [])
    if workers and not placements:
        raise ProcfileError(
            f"farm {farm!r}'s worker hosts ({', '.join(workers)}) run no process type: the Procfile declares "
            f"only {', '.join(procfile.types)} (add a worker type, or farm ps:scale -f {farm} worker=0)"
        )


def sidekiq_processes(placements: list[Placement]) -> list[dict[str, Any]]:
    """sidekiq_worker_processes for the Sidekiq types placed on worker hosts: one process per type
    (named after it) or COUNT numbered ones (`<type>_1`...)."""
    processes = []
    for placement in placements:
        if placement.type.kind != "sidekiq":
            continue
        names = (
            [placement.type.name]
            if placement.count == 1
            else [f"{placement.type.name}_{i}" for i in range(1, placement.count + 1)]
        )
        options = {
            k: v
            for k, v in placement.type.sidekiq.items()
            if k in ("queues", "concurrency", "timeout", "config")
        }
        options["queues"] = options.get("queues") or ["default"]  # Sidekiq's own default
        processes.extend({"name": name, **options} for name in names)
    return processes


def services(placements: list[Placement]) -> list[dict[str, Any]]:
    """The other process types placed on worker hosts, as systemd services: name, command, count."""
    return [
        {"name": p.type.name, "command": p.type.command, "count": p.count}
        for p in placements
        if p.type.kind == "service"
    ]


_GEM = r"""^\s*gem\s*\(?\s*["']{gem}["']"""


def check_gemfile(procfile: Procfile, gemfile: str | None) -> None:
    """The app's Gemfile holds what Farmhand runs: unicorn (web), sidekiq (a Sidekiq type)."""
    if gemfile is None:
        raise ProcfileError("the app has no Gemfile: Farmhand runs Rails apps with bundler")
    needed = ["unicorn"] + (["sidekiq"] if any(t.kind == "sidekiq" for t in procfile.types.values()) else [])
    for gem in needed:
        if not re.search(_GEM.format(gem=gem), gemfile, re.MULTILINE):
            why = (
                "its web hosts run the app under Unicorn"
                if gem == "unicorn"
                else "a process type runs sidekiq"
            )
            raise ProcfileError(
                f'the app\'s Gemfile has no {gem} gem: Farmhand needs it ({why}); add gem "{gem}"'
            )
