"""The `farm` command: Heroku's verbs for farms of EC2 hosts.

The root group and the entry point only: each topic's commands are in farmhand.commands.<topic>,
the work they do in farmhand.core.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from farmhand import __version__
from farmhand.commands import (
    apps,
    completion,
    config,
    converge,
    cron,
    help,
    local,
    logs,
    maintenance,
    pg,
    pg_backups,
    ps,
    releases,
    restart,
    run,
    ssh,
)
from farmhand.commands._group import HerokuGroup
from farmhand.commands._output import error
from farmhand.core.errors import FarmError

TOPICS = (
    apps,
    converge,
    releases,
    restart,
    maintenance,
    ps,
    config,
    pg,
    pg_backups,
    cron,
    logs,
    run,
    ssh,
    help,
    completion,
    local,
)


@click.group(cls=HerokuGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farm")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
def cli(debug: bool) -> None:
    """Heroku's workflow on your own EC2 hosts, driven by Ansible.

    Hosts are EC2 instances tagged `farm` and `role`; every command takes -f FARM.
    A local farm (Podman + moto) behaves like a real one: `farm local up -f demo`.
    """


for _topic in TOPICS:
    for _command in _topic.COMMANDS:
        cli.add_command(_command)


# -- entry point ---------------------------------------------------------------------------------


def _find_ansible_beside_farm() -> None:
    """Ansible's commands are installed beside `farm` (the same venv): find them there even when
    the venv is not on PATH (`.venv/bin/farm ps`)."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    if bin_dir not in path:
        os.environ["PATH"] = os.pathsep.join([*path, bin_dir])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI: user errors are one line on stderr with exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    _find_ansible_beside_farm()
    _freeze_heap()
    try:
        return _run(args)
    finally:
        _freeze_heap()


def _freeze_heap() -> None:
    """`farm` runs one command and exits: what its imports built (click's commands, boto3's and
    Ansible's modules and models) lives till then. Frozen, the cycle collector stops walking it on
    each collection and at the exit, where that walk cost each `farm` run about 0.3 s of CPU
    (issue 17). The cost: garbage cycles among frozen objects stay till the exit, which is near."""
    gc.freeze()


def _run(args: list[str]) -> int:
    try:
        result = cli.main(args=args, prog_name="farm", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except FarmError as exc:
        error(str(exc))
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `farm`: the help itself
        exc.show()
        return exc.exit_code
    except click.UsageError as exc:  # one line too, naming the command's help
        where = exc.ctx.command_path if exc.ctx else "farm"
        error(f"{exc.format_message().rstrip('.')} (see `{where} --help`)")
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        error("aborted")
        return 130
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except Exception as exc:  # an unexpected bug: keep the traceback behind --debug
        if "--debug" in args:
            traceback.print_exc()
        else:
            error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 1
