"""farmhand_local_image: the image a local farm's hosts start from (farmhand.core.local.farm).

A farm that names a baked image starts its hosts from it, as from an AMI with packages already in;
one that names an image this machine does not have is refused in one line before anything exists.
Needs Podman (installed by `make deps`), as the local farm does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import FARM_BIN, REPO_ROOT, make_project

from farmhand.core.local.image import IMAGE
from farmhand.core.local.podman import containers, exists
from farmhand.core.project import Project


def test_a_farm_without_one_starts_from_the_bare_image():
    project = Project.locate(REPO_ROOT)
    assert project.farm_var("ci", "farmhand_local_image") == ""


def test_the_jobs_farm_starts_from_molecules_image():
    project = Project.locate(REPO_ROOT)
    assert project.farm_var("jobs", "farmhand_local_image") == f"{IMAGE}-molecule:latest"


def test_an_image_that_is_not_here_is_refused_before_anything_exists(tmp_path: Path):
    missing = "localhost/farmhand/no-such-image:latest"
    assert not exists("image", missing)
    root = make_project(tmp_path / "p", {"farm_probe/local.yml": f"farmhand_local_image: {missing}\n"})

    proc = subprocess.run(
        [str(FARM_BIN), "local", "up", "-f", "probe"], cwd=root, capture_output=True, text=True, timeout=120
    )

    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line == (
        f"farm: error: farmhand_local_image {missing!r} of farm 'probe' is not an image here: build it first"
    )
    assert not (root / ".farm" / "local").exists()  # no farm state, keys or moto of its own
    assert containers(["farmhand.farm=probe"]) == []
    networks = subprocess.run(
        ["podman", "network", "ls", "--filter", "label=farmhand.farm=probe", "--quiet"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert networks.stdout == ""
