"""Release records in SSM and the app repository helpers (git refs, archives)."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from farmhand.core import releases
from farmhand.core.app import Source, archive, resolve_ref, source_at
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
    source = source_at(repo / "app", "bookshelf")
    path = archive(source, sha, tmp_path / "builds")
    with tarfile.open(path) as tar:
        names = tar.getnames()
        body = tar.extractfile("config.ru").read().decode()
    assert "config.ru" in names
    assert "outside.txt" not in names
    assert "v1" in body
    assert archive(source, sha, tmp_path / "builds") == path  # cached


# -- releases know their app --------------------------------------------------------------------


def body_of(path: Path) -> str:
    with tarfile.open(path) as tar:
        return tar.extractfile("config.ru").read().decode()


def test_a_release_records_its_app_and_repository(ssm):
    made = releases.create(ssm, "demo", "a" * 40, "Deploy", app="shop", repo="/src/mono/apps/shop")
    (stored,) = releases.list_releases(ssm, "demo")
    assert (stored.app, stored.repo) == (made.app, made.repo) == ("shop", "/src/mono/apps/shop")
    raw = json.loads(ssm.get_parameter(Name="/farmhand/demo/releases/1")["Parameter"]["Value"])
    assert (raw["app"], raw["repo"]) == ("shop", "/src/mono/apps/shop")


def test_records_made_before_releases_knew_their_app_still_load(ssm):
    old = {
        "version": 1,
        "sha": "a" * 40,
        "description": "Deploy aaaaaaa",
        "user": "alice",
        "created_at": "2025-01-01T00:00:00Z",
        "status": "succeeded",
        "detail": "",
        "config_version": 1,
        "kind": "deploy",
    }
    ssm.put_parameter(Name="/farmhand/demo/releases/1", Value=json.dumps(old), Type="String")
    (stored,) = releases.list_releases(ssm, "demo")
    assert (stored.label, stored.status, stored.user) == ("v1", "succeeded", "alice")
    assert (stored.app, stored.repo) == ("", "")
    assert releases.create(ssm, "demo", "b" * 40, "Deploy", app="bookshelf").version == 2


def test_the_source_names_the_apps_directory_in_its_repository(repo):
    source = source_at(repo / "app", "bookshelf")
    assert (source.top, source.prefix) == (repo.resolve(), "app/")
    assert source.repo == str(repo.resolve() / "app")
    assert source_at(repo, "whole").repo == str(repo.resolve())


def test_two_apps_of_one_repository_get_their_own_archive_of_the_same_commit(repo, tmp_path):
    (repo / "shop").mkdir()
    (repo / "shop" / "config.ru").write_text("run ->(env) { [200, {}, ['shop']] }\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a shop beside the app")
    sha = git(repo, "rev-parse", "HEAD")
    builds = tmp_path / "builds"
    books = archive(source_at(repo / "app", "bookshelf"), sha, builds)
    shop = archive(source_at(repo / "shop", "shop"), sha, builds)
    assert books != shop
    assert books.parent == builds / "bookshelf" and shop.parent == builds / "shop"
    assert (body_of(books), body_of(shop)) == (
        "run ->(env) { [200, {}, ['v2']] }\n",
        "run ->(env) { [200, {}, ['shop']] }\n",
    )
    # The same app name in another subdirectory: another archive too.
    moved = archive(source_at(repo / "shop", "bookshelf"), sha, builds)
    assert moved not in (books, shop) and "shop" in body_of(moved)


def test_a_cached_archive_of_another_app_is_not_used(repo, tmp_path):
    sha = resolve_ref(repo, "v1")
    builds = tmp_path / "builds"
    other = Source(name="shop", top=repo.resolve(), prefix="app/")
    planted = other.archive_path(builds, sha)
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"the shop's archive")
    made = archive(source_at(repo / "app", "bookshelf"), sha, builds)
    assert made != planted
    assert "v1" in body_of(made)
    assert planted.read_bytes() == b"the shop's archive"


def test_a_cached_archive_of_a_commit_outside_the_repository_is_refused(repo, tmp_path):
    foreign = tmp_path / "foreign"
    (foreign / "app").mkdir(parents=True)
    git(foreign, "init", "-q")
    git(foreign, "config", "user.email", "t@example.com")
    git(foreign, "config", "user.name", "t")
    (foreign / "app" / "config.ru").write_text("run ->(env) { [200, {}, ['foreign']] }\n")
    git(foreign, "add", "-A")
    git(foreign, "commit", "-qm", "another app")
    sha = git(foreign, "rev-parse", "HEAD")
    builds = tmp_path / "builds"
    # Its archive, made as a deploy from the other repository left it, under the same app name.
    cached = archive(source_at(foreign / "app", "bookshelf"), sha, builds)
    source = source_at(repo / "app", "bookshelf")
    assert source.archive_path(builds, sha) == cached  # same name, directory and commit...
    with pytest.raises(FarmError, match=f"commit {sha[:7]} is not in the app repository {source.repo}"):
        archive(source, sha, builds)  # ...but not a commit of this repository


def test_a_commit_without_the_apps_directory_is_refused(repo, tmp_path):
    (repo / "shop").mkdir()
    (repo / "shop" / "config.ru").write_text("shop\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "shop")
    before = resolve_ref(repo, "v1")  # the shop did not exist yet
    with pytest.raises(FarmError, match=f"commit {before[:7]} has no shop directory"):
        archive(source_at(repo / "shop", "shop"), before, tmp_path / "builds")
    assert not (tmp_path / "builds").exists()


@pytest.mark.parametrize("sha", ["", "HEAD", "v1", "abc1234"])
def test_only_full_commit_ids_count_as_commits_of_the_repository(repo, sha):
    assert not source_at(repo / "app", "bookshelf").has_commit(sha)
