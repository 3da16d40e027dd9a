"""Numbered releases (v1, v2, ...) of a farm, recorded in SSM Parameter Store like Heroku's.

One parameter per release, /farmhand/<farm>/releases/<n>, holding a JSON record: the team sees
the same history, AWS audits it, and two deploys can never take the same number (the parameter
is created with Overwrite=False).
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from farmhand.core.aws import aws_errors
from farmhand.core.errors import FarmError

STATUSES = ("pending", "succeeded", "failed")


def _path(farm: str) -> str:
    return f"/farmhand/{farm}/releases/"


@dataclass
class Release:
    version: int
    sha: str
    description: str
    user: str = field(default_factory=lambda: os.environ.get("FARMHAND_USER") or getpass.getuser())
    created_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    status: str = "pending"
    detail: str = ""
    config_version: int | None = None
    kind: str = "deploy"
    # The app the release is of: its farmhand_app_name, and its directory in the repository it came
    # from, as the deploying machine resolved it (core.app.Source.repo). Records made before
    # releases knew their app have neither: "".
    app: str = ""
    repo: str = ""

    @property
    def label(self) -> str:
        return f"v{self.version}"

    @property
    def dir_name(self) -> str:
        """The release's directory on the hosts: releases/<version>-<short sha>."""
        return f"{self.version}-{self.sha[:7]}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_releases(ssm: Any, farm: str) -> list[Release]:
    found: list[Release] = []
    with aws_errors():
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=_path(farm)):
            for param in page["Parameters"]:
                data = json.loads(param["Value"])
                found.append(Release(**{k: v for k, v in data.items() if k in Release.__dataclass_fields__}))
    return sorted(found, key=lambda r: r.version)


def _put(ssm: Any, farm: str, release: Release, overwrite: bool) -> None:
    ssm.put_parameter(
        Name=f"{_path(farm)}{release.version}",
        Value=json.dumps(release.as_dict(), sort_keys=True),
        Type="String",
        Overwrite=overwrite,
    )


def create(
    ssm: Any,
    farm: str,
    sha: str,
    description: str,
    kind: str = "deploy",
    config_version: int | None = None,
    app: str = "",
    repo: str = "",
) -> Release:
    """Record a new pending release of APP (from REPO) with the next free number."""
    for _ in range(20):
        existing = list_releases(ssm, farm)
        version = (existing[-1].version + 1) if existing else 1
        release = Release(
            version=version,
            sha=sha,
            description=description,
            kind=kind,
            config_version=config_version,
            app=app,
            repo=repo,
        )
        try:
            with aws_errors():
                _put(ssm, farm, release, overwrite=False)
            return release
        except FarmError as exc:
            if "ParameterAlreadyExists" not in str(exc):
                raise
    raise FarmError("could not take a release number: too many concurrent deploys")


def finish(ssm: Any, farm: str, release: Release, status: str, detail: str = "") -> None:
    assert status in STATUSES
    release.status = status
    release.detail = detail
    with aws_errors():
        _put(ssm, farm, release, overwrite=True)


def parse_label(label: str) -> int:
    """The number of a release named vN (or N)."""
    number = label[1:] if label.lower().startswith("v") else label
    if not (number.isascii() and number.isdigit()):
        raise FarmError(f"invalid release {label!r}: use vN, as `farm releases` shows")
    return int(number)


def find(releases: list[Release], label: str) -> Release:
    """The release named vN (or N)."""
    number = parse_label(label)
    for release in releases:
        if release.version == number:
            return release
    raise FarmError(f"no release v{number}: `farm releases` lists them")
