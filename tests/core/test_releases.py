"""Release records in SSM and the app repository helpers (git refs, archives)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from farmhand.core import releases
from farmhand.core.app import archive, resolve_ref
from farmhand.core.errors import FarmError


@pytest.fixture
def ssm():
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    git(root, "init", "-q")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    (root / "app" / "config.ru").write_text("run ->(env) { [200, {}, ['v1']] }\n")
    (root / "outside.txt").write_text("not part of the app\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v1")
    git(root, "tag", "v1")
    (root / "app" / "config.ru").write_text("run ->(env) { [200, {}, ['v2']] }\n")
    git(root, "commit", "-qam", "v2")
    return root


def test_releases_are_numbered_from_one_and_listed_in_order(ssm):
    first = releases.create(ssm, "demo", "a" * 40, "Deploy aaaaaaa")
    second = releases.create(ssm, "demo", "b" * 40, "Deploy bbbbbbb")
    releases.create(ssm, "other", "c" * 40, "Deploy ccccccc")
    assert (first.label, second.label) == ("v1", "v2")
    listed = releases.list_releases(ssm, "demo")
    assert [r.version for r in listed] == [1, 2]
    assert listed[0].status == "pending"
    assert listed[1].dir_name == "2-bbbbbbb"


def test_finish_records_status_and_detail(ssm):
    release = releases.create(ssm, "demo", "a" * 40, "Deploy")
    releases.finish(ssm, "demo", release, "failed", "build failed on demo-web-1")
    (stored,) = releases.list_releases(ssm, "demo")
    assert (stored.status, stored.detail) == ("failed", "build failed on demo-web-1")


def test_a_taken_number_is_never_reused(ssm):
    releases.create(ssm, "demo", "a" * 40, "Deploy")
    ssm.put_parameter(
        Name="/farmhand/demo/releases/2",
        Value='{"version": 2, "sha": "x", "description": "d"}',
        Type="String",
    )
    third = releases.create(ssm, "demo", "b" * 40, "Deploy")
    assert third.version == 3


@pytest.mark.parametrize("label", ["v9", "9", "vx", "latest", ""])
def test_find_refuses_unknown_or_malformed_releases(ssm, label):
    releases.create(ssm, "demo", "a" * 40, "Deploy")
    with pytest.raises(FarmError):
        releases.find(releases.list_releases(ssm, "demo"), label)


def test_find_accepts_vn_and_n(ssm):
    releases.create(ssm, "demo", "a" * 40, "Deploy")
    listed = releases.list_releases(ssm, "demo")
    assert releases.find(listed, "v1").version == releases.find(listed, "1").version == 1


def test_resolve_ref_gives_full_commit_ids(repo):
    head = git(repo, "rev-parse", "HEAD")
    assert resolve_ref(repo / "app", "HEAD") == head
    assert resolve_ref(repo / "app", head[:7]) == head
    assert resolve_ref(repo / "app", "v1") == git(repo, "rev-parse", "v1^{commit}")


@pytest.mark.parametrize("ref", ["nope", "v99", "--all", "", "HEAD~5"])
def test_resolve_ref_refuses_unknown_refs(repo, ref):
    with pytest.raises(FarmError):
        resolve_ref(repo / "app", ref)


def test_archive_holds_only_the_app_directory_at_that_commit(repo, tmp_path):
    sha = resolve_ref(repo / "app", "v1")
    path = archive(repo / "app", sha, tmp_path / "builds")
    with tarfile.open(path) as tar:
        names = tar.getnames()
        body = tar.extractfile("config.ru").read().decode()
    assert "config.ru" in names
    assert "outside.txt" not in names
    assert "v1" in body
    assert archive(repo / "app", sha, tmp_path / "builds") == path  # cached
