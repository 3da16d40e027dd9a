"""Releases are unpacked, built once, switched atomically and pruned."""

# podman exec is many times faster than a round trip through Ansible for every command.
testinfra_hosts = ["podman://molecule-app-release"]

ROOT = "/srv/bookshelf"


def test_current_points_at_the_newest_release(host):
    current = host.file(f"{ROOT}/current")
    assert current.is_symlink
    assert current.linked_to.startswith(f"{ROOT}/releases/3-")


def test_only_the_newest_two_releases_are_kept(host):
    names = sorted(host.check_output(f"ls {ROOT}/releases").split())
    assert [n.split("-")[0] for n in names] == ["2", "3"]


def test_release_is_built_with_debian_gems_only(host):
    release = host.file(f"{ROOT}/current").linked_to
    assert host.file(f"{release}/Gemfile.lock").exists
    assert host.file(f"{release}/.farmhand-built").exists
    with host.sudo("app"):
        check = host.run(f"cd {release} && HOME={ROOT} bundle check")
    assert check.rc == 0, check.stdout + check.stderr
    assert "satisfied" in check.stdout


def test_release_files_belong_to_the_app_user(host):
    release = host.file(f"{ROOT}/current").linked_to
    assert host.file(release).user == "app"
    assert host.file(f"{release}/config.ru").user == "app"


def test_revision_and_shared_links(host):
    release = host.file(f"{ROOT}/current").linked_to
    revision = host.file(f"{release}/REVISION").content_string.strip()
    assert len(revision) == 40
    assert release.endswith(revision[:7])
    assert host.file(f"{release}/log").linked_to == f"{ROOT}/shared/log"
    assert host.file(f"{release}/tmp").linked_to == f"{ROOT}/shared/tmp"
