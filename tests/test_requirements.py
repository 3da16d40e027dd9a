"""requirements.yml pins the collections Farmhand uses; the venv has exactly those versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
GALAXY = Path(sys.executable).with_name("ansible-galaxy")
USED = {
    "amazon.aws",
    "community.aws",
    "community.postgresql",
    "community.general",
    "ansible.posix",
    "containers.podman",
    "community.crypto",
}


def pins() -> dict[str, str]:
    data = yaml.safe_load((REPO_ROOT / "requirements.yml").read_text(encoding="utf-8"))
    return {entry["name"]: str(entry["version"]) for entry in data["collections"]}


@pytest.fixture(scope="module")
def installed() -> dict[str, str]:
    """Each collection's version as Ansible resolves it: the first collections path that holds it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    proc = subprocess.run(
        [str(GALAXY), "collection", "list", "--format", "json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    listing: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    found: dict[str, str] = {}
    for collections in listing.values():
        for name, info in collections.items():
            found.setdefault(name, str(info["version"]))
    return found


def test_requirements_pin_every_collection_farmhand_uses():
    assert set(pins()) >= USED


def test_every_pin_is_an_exact_version():
    for name, version in pins().items():
        assert version.replace(".", "").isdigit() and version.count(".") == 2, f"{name}: {version!r}"


@pytest.mark.parametrize("name", sorted(pins()))
def test_pinned_collection_is_installed_at_the_pinned_version(name, installed):
    assert name in installed, f"{name} is not installed"
    assert installed[name] == pins()[name]
