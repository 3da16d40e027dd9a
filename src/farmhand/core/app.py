"""The application: its git repository (resolve a ref to a commit and archive that commit) and the
URLs it is served at."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from farmhand.core.errors import FarmError
from farmhand.core.local.farm import LocalFarm
from farmhand.core.project import Project
from farmhand.core.target import Target

DEFAULT_REPO = "examples/bookshelf"


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise FarmError("git is not installed: run `make deps` (as root) to install it")
    return subprocess.run([git, "-C", str(repo), *args], capture_output=True, text=True, check=False)


def app_repo(project: Project, farm: str, override: str | None = None) -> Path:
    """The app's git work tree: --repo, else farmhand_app_repo from group_vars, else the sample app."""
    value = override or project.farm_var(farm, "farmhand_app_repo", DEFAULT_REPO)
    path = Path(value)
    if not path.is_absolute():
        path = (project.root / path).resolve()
    if not path.is_dir() or git(path, "rev-parse", "--git-dir").returncode != 0:
        raise FarmError(f"the app repository {path} is not a git work tree (set farmhand_app_repo or --repo)")
    return path


def resolve_ref(repo: Path, ref: str) -> str:
    """The full commit id of REF, or a FarmError naming the unknown ref."""
    if not ref or ref.startswith("-"):
        raise FarmError(f"invalid ref {ref!r}")
    proc = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if proc.returncode != 0:
        raise FarmError(f"unknown ref {ref!r} in {repo}")
    return proc.stdout.strip()


def archive(repo: Path, sha: str, dest_dir: Path) -> Path:
    """A tar.gz of the app at commit SHA (only the app's directory when it is inside a larger repo)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"{sha}.tar.gz"
    if target.exists():
        return target
    prefix = git(repo, "rev-parse", "--show-prefix").stdout.strip()
    top = Path(git(repo, "rev-parse", "--show-toplevel").stdout.strip())
    tree = f"{sha}:{prefix}" if prefix else sha
    partial = target.with_suffix(".partial")
    proc = git(top, "archive", "--format=tar.gz", "-o", str(partial), tree)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise FarmError(f"git archive of {sha[:7]} failed: {proc.stderr.strip()}")
    partial.rename(target)
    return target


def app_urls(target: Target) -> list[str]:
    """The local farm's load balancer URLs, or farmhand_web_url from group_vars for a farm on AWS."""
    if target.local:
        return LocalFarm(target.project, target.farm).app_urls()
    url = target.project.farm_var(target.farm, "farmhand_web_url")
    return [url] if url else []
