"""The application: its name, its git repository (resolve a ref to a commit and archive that
commit, kept per app in .farm/archives) and the URLs it is served at."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from farmhand.core.errors import FarmError
from farmhand.core.local.farm import LocalFarm
from farmhand.core.project import Project
from farmhand.core.target import Target

DEFAULT_REPO = "examples/bookshelf"
DEFAULT_NAME = "bookshelf"  # as group_vars/all/app.yml sets it


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise FarmError("git is not installed: run `make deps` (as root) to install it")
    return subprocess.run([git, "-C", str(repo), *args], capture_output=True, text=True, check=False)


def app_name(project: Project, farm: str) -> str:
    """The farm's app: farmhand_app_name from group_vars (group_vars/all/app.yml)."""
    return str(project.farm_var(farm, "farmhand_app_name", DEFAULT_NAME))


def app_repo(project: Project, farm: str, override: str | None = None) -> Path:
    """The app's git work tree: --repo, else farmhand_app_repo from group_vars, else the sample app."""
    value = override or project.farm_var(farm, "farmhand_app_repo", DEFAULT_REPO)
    path = Path(value)
    if not path.is_absolute():
        path = (project.root / path).resolve()
    if not path.is_dir() or git(path, "rev-parse", "--git-dir").returncode != 0:
        raise FarmError(f"the app repository {path} is not a git work tree (set farmhand_app_repo or --repo)")
    return path


@dataclass(frozen=True)
class Source:
    """Where the farm's app comes from: its name, and its directory in a git repository (the work
    tree's top and the app's subdirectory in it, `git rev-parse --show-prefix`: "" or "apps/shop/").

    A commit gives a different archive per subdirectory, and a cached archive serves only the app
    it was made for: archives are kept per app and subdirectory, and a commit is checked to be in
    this repository before its archive, cached or not, is used."""

    name: str
    top: Path
    prefix: str

    @property
    def repo(self) -> str:
        """The app's directory (the work tree's top plus the subdirectory): a release's `repo`."""
        return str(self.top / self.prefix) if self.prefix else str(self.top)

    def has_commit(self, sha: str) -> bool:
        """Whether SHA (a full commit id) is a commit of this repository."""
        if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
            return False
        return git(self.top, "cat-file", "-e", f"{sha}^{{commit}}").returncode == 0

    def require_commit(self, sha: str, what: str, origin: str = "") -> None:
        """A FarmError unless SHA is a commit of this repository that holds the app's directory;
        WHAT names the commit in the message ("v3's commit"), ORIGIN where it was deployed from."""
        if not self.has_commit(sha):
            came = f" (it came from {origin})" if origin else ""
            raise FarmError(
                f"{what} {sha[:7] or '(none)'} is not in the app repository {self.repo}{came}: "
                "give the app's repository with --repo (or set farmhand_app_repo)"
            )
        if self.prefix and git(self.top, "cat-file", "-e", f"{sha}:{self.prefix}").returncode != 0:
            raise FarmError(
                f"{what} {sha[:7]} has no {self.prefix.rstrip('/')} directory: not the app's code"
            )

    def archive_path(self, archives: Path, sha: str) -> Path:
        """ARCHIVES/<app>/<sha>[-<subdirectory>-<its hash>].tar.gz: one per app, commit and subdirectory."""
        name = sha
        if self.prefix:
            digest = hashlib.sha256(self.prefix.encode()).hexdigest()[:8]
            name += f"-{_slug(self.prefix)}-{digest}"
        return archives / _slug(self.name) / f"{name}.tar.gz"


def read_file(source: Source, sha: str, path: str) -> str | None:
    """The app's file PATH (relative to the app's directory) at commit SHA, or None if it has none."""
    proc = git(source.top, "cat-file", "-p", f"{sha}:{source.prefix}{path}")
    return proc.stdout if proc.returncode == 0 else None


def _slug(text: str) -> str:
    """TEXT as one safe file name: runs of other characters than letters, digits, `.`, `_` become `-`."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.") or "app"


def app_source(project: Project, farm: str, override: str | None = None) -> Source:
    """The farm's app and its repository (--repo, else farmhand_app_repo)."""
    return source_at(app_repo(project, farm, override), app_name(project, farm))


def source_at(repo: Path, name: str) -> Source:
    """The app NAME whose code is the git work tree REPO (or the directory REPO inside one)."""
    top = git(repo, "rev-parse", "--show-toplevel").stdout.strip()
    if not top:  # a bare repository, or inside .git
        raise FarmError(f"the app repository {repo} is not a git work tree (set farmhand_app_repo or --repo)")
    prefix = git(repo, "rev-parse", "--show-prefix").stdout.strip()
    return Source(name=name, top=Path(top), prefix=prefix)


def resolve_ref(repo: Path, ref: str) -> str:
    """The full commit id of REF, or a FarmError naming the unknown ref."""
    if not ref or ref.startswith("-"):
        raise FarmError(f"invalid ref {ref!r}")
    proc = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if proc.returncode != 0:
        raise FarmError(f"unknown ref {ref!r} in {repo}")
    return proc.stdout.strip()


def archive(source: Source, sha: str, archives: Path) -> Path:
    """A tar.gz of the app at commit SHA (only the app's directory when it is inside a larger repo),
    kept in ARCHIVES for the next time. A FarmError if SHA is not a commit of SOURCE's repository,
    whatever is cached."""
    source.require_commit(sha, "commit")
    target = source.archive_path(archives, sha)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tree = f"{sha}:{source.prefix}" if source.prefix else sha
    partial = target.with_suffix(".partial")
    proc = git(source.top, "archive", "--format=tar.gz", "-o", str(partial), tree)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        reason = (proc.stderr.strip().splitlines() or ["no reason given"])[0]
        raise FarmError(f"git archive of {sha[:7]} failed: {reason}")
    partial.rename(target)
    return target


def app_urls(target: Target) -> list[str]:
    """The local farm's load balancer URLs, or farmhand_web_url from group_vars for a farm on AWS."""
    if target.local:
        return LocalFarm(target.project, target.farm).app_urls()
    url = target.project.farm_var(target.farm, "farmhand_web_url")
    return [url] if url else []
