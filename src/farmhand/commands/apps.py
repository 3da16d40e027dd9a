"""`farm info`: the farm at a glance (Heroku's `apps:info`)."""

from __future__ import annotations

import click

from farmhand.commands._options import farm_option, json_option
from farmhand.commands._output import out, show
from farmhand.core import app, deploy
from farmhand.core.target import resolve


@click.command("info")
@farm_option
@json_option()
def info_cmd(farm: str | None, as_json: bool) -> None:
    """Show the farm: where it runs, its hosts by role, the current release, the web URL.

    \b
    Example:
      farm info -f staging
    """
    target = resolve(farm)
    current = deploy.current_release(deploy.release_history(target))
    counts = {role: len(target.hosts_with_role(role)) for role in target.project.roles}
    urls = app.app_urls(target)
    roles = {r: n for r, n in counts.items() if n}
    payload = {
        "farm": target.farm,
        "local": target.local,
        "region": target.project.region,
        "hosts": len(target.hosts),
        "roles": roles,
        "release": current.as_dict() if current else None,
        "web_urls": urls,
    }

    def text() -> None:
        out.print(f"=== {target.farm}", markup=False)
        hosts = ", ".join(f"{r} {n}" for r, n in roles.items())
        release = (
            f"{current.label} {current.sha[:7]} {current.description} ({current.user}, {current.created_at})"
            if current
            else "none yet: farm deploy"
        )
        rows = [
            ("Location", "local farm (Podman, moto)" if target.local else f"AWS {target.project.region}"),
            ("Hosts", f"{len(target.hosts)} ({hosts})"),
            ("Release", release),
            ("Web URL", ", ".join(urls) or "-"),
        ]
        for key, value in rows:
            out.print(f"{key + ':':<10} {value}", markup=False)

    show(as_json, payload, text)


COMMANDS = (info_cmd,)
