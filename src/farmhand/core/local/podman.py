"""Thin helpers around the podman command line."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from farmhand.core.errors import FarmError


def require(binary: str, hint: str = "run `make deps` (as root) to install it") -> str:
    path = shutil.which(binary)
    if not path:
        raise FarmError(f"{binary} is not installed: {hint}")
    return path


def podman(*args: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `podman ARGS`; a failure becomes a FarmError with podman's own last line."""
    proc = subprocess.run(
        [require("podman"), *args], input=input_text, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise FarmError(f"podman {args[0]} failed: {lines[-1] if lines else proc.returncode}")
    return proc


def podman_json(*args: str) -> Any:
    out = podman(*args).stdout.strip()
    return json.loads(out) if out else []


def containers(labels: Sequence[str]) -> list[dict[str, Any]]:
    """Containers (running or not) carrying every label given as key=value."""
    args = ["ps", "-a", "--format", "json"]
    for label in labels:
        args += ["--filter", f"label={label}"]
    return podman_json(*args)


def exists(kind: str, name: str) -> bool:
    return podman(kind, "exists", name, check=False).returncode == 0
