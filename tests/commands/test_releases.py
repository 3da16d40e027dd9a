"""`farm deploy`, `releases`, `rollback`, with a stand-in for ansible-playbook."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import (
    OK_RECAP,
    REPO_ROOT,
    assert_ok,
    assert_one_line_error,
    counts,
    failed_task,
    fake_playbook,
    farm,
    head_of_sample_app,
    make_project,
    parameters,
    ran,
    ssm_client,
)

SAMPLE_APP = REPO_ROOT.resolve() / "examples/bookshelf"

FAILED_BUILD = (
    "echo 'TASK [app_release : Build the release] *****'\n"
    "echo 'fatal: [demo-web-2]: FAILED! => {}'\n"
    + ran(
        {"demo-web-2": counts(changed=2, failed=1)},
        failed_task("demo-web-2", "Build the release", "app_release"),
    )
    + "exit 2\n"
)


def test_deploy_records_a_release_and_runs_deploy_yml(aws_env, farms, tmp_path):
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path, "FARMHAND_USER": "alice"}
    proc = farm("deploy", "-f", "demo", env=env)
    assert_ok(proc)
    sha = head_of_sample_app()
    assert f"Released v1 ({sha[:7]}) to demo" in proc.stdout
    args = calls.read_text().split()
    assert args[:3] == ["playbooks/deploy.yml", "--limit", "farm_demo"]
    release = json.loads(calls.with_suffix(".log.json").read_text())["farmhand_release"]
    assert release == {
        "name": f"1-{sha[:7]}",
        "label": "v1",
        "sha": sha,
        "archive": release["archive"],
        "release_phase": True,
    }
    # Cached per app and subdirectory: .farm/archives/<app>/<sha>-<subdirectory>-<its hash>.tar.gz
    archive = Path(release["archive"])
    assert archive.parent.parts[-3:] == (".farm", "archives", "bookshelf")
    assert archive.name.startswith(f"{sha}-examples-bookshelf-") and archive.name.endswith(".tar.gz")
    # The release file is gone; the recorded release says who and what.
    assert not list((Path(aws_env["FARMHAND_HOME"]) / ".farm").glob("release-*.json"))
    listing = json.loads(farm("releases", "-f", "demo", "--json", env=env).stdout)
    (row,) = listing["releases"]
    assert (row["version"], row["status"], row["user"], row["current"]) == (1, "succeeded", "alice", True)
    # The release knows its app: farmhand_app_name, and the app's directory in its repository.
    assert (row["app"], row["repo"]) == ("bookshelf", str(SAMPLE_APP))
    # The same commit again: nothing to do, no new release.
    again = farm("deploy", "-f", "demo", env=env)
    assert_ok(again)
    assert "nothing to deploy" in again.stdout
    assert len(json.loads(farm("releases", "-f", "demo", "--json", env=env).stdout)["releases"]) == 1


def test_a_failed_deploy_is_recorded_and_names_host_and_step(aws_env, farms, tmp_path):
    path, _ = fake_playbook(tmp_path, FAILED_BUILD)
    proc = farm("deploy", "-f", "demo", env={**aws_env, "PATH": path})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "farm: error: v1 failed on demo-web-2 (Build the release); `farm releases -f demo` shows what runs"
    ]
    stored = json.loads(parameters(aws_env["AWS_ENDPOINT_URL"])["/farmhand/demo/releases/1"])
    assert (stored["status"], stored["detail"]) == ("failed", "failed on demo-web-2 (Build the release)")


def failed_after_the_switch(put_back_ok: bool) -> str:
    """A stand-in deploy.yml whose first run fails restarting a web host after the switch reached
    both web hosts (deploy.yml's set_stats), and whose second run (the put-back) succeeds or fails."""
    failed = ran(
        {"demo-web-1": counts(changed=3, failed=1), "demo-web-2": counts(changed=2)},
        failed_task("demo-web-1", "Wait until the release answers its health check", "rails_unicorn"),
        custom={"farmhand_switch_reached": ["demo-web-2", "demo-web-1"]},
    )
    second = (
        OK_RECAP
        if put_back_ok
        else ran(
            {"demo-web-1": counts(failed=1)},
            failed_task("demo-web-1", "Restart Unicorn onto the current release"),
        )
        + "exit 2\n"
    )
    return f'if [ ! -e "$0.ran" ]; then\n: > "$0.ran"\n{failed}exit 2\nfi\n{second}'


@pytest.mark.parametrize("put_back_ok", [True, False], ids=["put-back", "put-back-fails"])
def test_a_deploy_that_fails_after_the_switch_puts_every_host_back_on_the_running_release(
    aws_env, farms, tmp_path, put_back_ok
):
    sha = head_of_sample_app()
    from farmhand.core import releases  # the CLI's own records, written as a deploy writes them

    ssm = ssm_client(aws_env["AWS_ENDPOINT_URL"])
    made = releases.create(ssm, "demo", sha, "Deploy 1", app="bookshelf")
    releases.finish(ssm, "demo", made, "succeeded")
    body = failed_after_the_switch(put_back_ok)
    path, calls = fake_playbook(tmp_path, body)
    env = {**aws_env, "PATH": path}

    proc = farm("deploy", "-f", "demo", "--force", env=env)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    where = "demo-web-1 (Wait until the release answers its health check)"
    if put_back_ok:
        expected = f"farm: error: v2 failed on {where}; every host is back on v1"
    else:
        expected = (
            f"farm: error: v2 failed on {where}, and putting the hosts back on v1 failed on demo-web-1 "
            "(Restart Unicorn onto the current release): `farm ps -f demo` shows what each host runs"
        )
    assert proc.stderr.strip().splitlines() == [expected], proc.stdout
    assert "v2 failed after the switch began: putting every host back on v1" in proc.stdout
    # Twice deploy.yml on the farm: v2, then v1 as `ps:scale` ships it (no release phase, no record).
    runs = calls.read_text().splitlines()
    assert [r.split()[:3] for r in runs] == [["playbooks/deploy.yml", "--limit", "farm_demo"]] * 2
    shipped = [
        json.loads(line)["farmhand_release"]
        for line in calls.with_suffix(".log.json").read_text().split("\n")
        if line
    ]
    assert [(r["label"], r["name"], r["release_phase"]) for r in shipped] == [
        ("v2", f"2-{sha[:7]}", True),
        ("v1", f"1-{sha[:7]}", False),
    ]
    rows = json.loads(farm("releases", "-f", "demo", "--json", env=env).stdout)["releases"]
    assert [(r["version"], r["status"], r["current"]) for r in rows] == [
        (2, "failed", False),
        (1, "succeeded", True),
    ]


def test_a_deploy_that_fails_before_the_switch_runs_nothing_more(aws_env, farms, tmp_path):
    sha = head_of_sample_app()
    from farmhand.core import releases

    ssm = ssm_client(aws_env["AWS_ENDPOINT_URL"])
    releases.finish(ssm, "demo", releases.create(ssm, "demo", sha, "Deploy 1", app="bookshelf"), "succeeded")
    path, calls = fake_playbook(tmp_path, FAILED_BUILD)
    proc = farm("deploy", "-f", "demo", "--force", env={**aws_env, "PATH": path})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "farm: error: v2 failed on demo-web-2 (Build the release); `farm releases -f demo` shows what runs"
    ]
    assert len(calls.read_text().splitlines()) == 1


def test_rollback_defaults_to_the_release_before_the_current_one(aws_env, farms, tmp_path):
    sha = head_of_sample_app()
    ssm = ssm_client(aws_env["AWS_ENDPOINT_URL"])
    from farmhand.core import releases  # the CLI's own records, written as a deploy writes them

    for number in (1, 2):
        made = releases.create(ssm, "demo", sha, f"Deploy {number}")
        releases.finish(ssm, "demo", made, "succeeded")
    failed = releases.create(ssm, "demo", sha, "Deploy 3")
    releases.finish(ssm, "demo", failed, "failed")
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    proc = farm("rollback", "-f", "demo", env=env)
    assert_ok(proc)
    assert "Rollback to v1 to demo" in proc.stdout and "Released v4" in proc.stdout
    release = json.loads(calls.with_suffix(".log.json").read_text())["farmhand_release"]
    assert (release["name"], release["release_phase"]) == (f"4-{sha[:7]}", False)
    rows = json.loads(farm("releases", "-f", "demo", "--json", env=env).stdout)["releases"]
    assert [(r["version"], r["kind"], r["current"]) for r in rows][:2] == [
        (4, "rollback", True),
        (3, "deploy", False),
    ]
    table = farm("releases", "-f", "demo", env=env).stdout
    assert "Rollback to v1" in table and "failed" in table


# -- releases know their app --------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def other_repo(tmp_path: Path, name: str = "other-app") -> Path:
    """An app repository of its own with two commits (HEAD~1, HEAD), neither in the sample app's."""
    repo = tmp_path / name
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    (repo / "Gemfile").write_text('gem "unicorn"\n')
    for n in (1, 2):
        (repo / "config.ru").write_text(f"run ->(env) {{ [200, {{}}, ['{name} {n}']] }}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"{name} {n}")
    return repo


def record(env: dict[str, str], sha: str, app: str = "bookshelf", repo: str = "", status: str = "succeeded"):
    """A release in moto's SSM as a deploy records it."""
    from farmhand.core import releases

    ssm = ssm_client(env["AWS_ENDPOINT_URL"])
    made = releases.create(ssm, "demo", sha, f"Deploy {sha[:7]}", app=app, repo=repo)
    releases.finish(ssm, "demo", made, status)
    return made


def test_rollback_to_a_commit_not_in_the_apps_repository_is_refused_and_records_nothing(
    aws_env, farms, tmp_path, guard
):
    foreign = other_repo(tmp_path)
    record(aws_env, git(foreign, "rev-parse", "HEAD"), repo=str(foreign))
    record(aws_env, head_of_sample_app(), repo=str(SAMPLE_APP))
    path, log = guard
    env = {**aws_env, "PATH": path}
    before = parameters(aws_env["AWS_ENDPOINT_URL"])
    for args in (("v1",), ()):  # named, or the release before the current one
        proc = farm("rollback", "-f", "demo", *args, env=env)
        assert_one_line_error(
            proc,
            f"v1's commit {git(foreign, 'rev-parse', 'HEAD')[:7]} is not in the app repository "
            f"{SAMPLE_APP} (it came from {foreign}): give the app's repository with --repo",
        )
    assert parameters(aws_env["AWS_ENDPOINT_URL"]) == before  # no release, no config version
    assert not log.exists()  # no playbook


def test_rollback_to_a_release_of_another_app_is_refused(aws_env, farms, tmp_path, guard):
    sha = head_of_sample_app()
    record(aws_env, sha, app="shop", repo=str(SAMPLE_APP))  # same commit, another app's name
    record(aws_env, sha, repo=str(SAMPLE_APP))
    path, log = guard
    before = parameters(aws_env["AWS_ENDPOINT_URL"])
    proc = farm("rollback", "-f", "demo", "v1", env={**aws_env, "PATH": path})
    assert_one_line_error(
        proc,
        "v1 is a release of the app 'shop', and the farm's app is now 'bookshelf' (farmhand_app_name)",
    )
    assert parameters(aws_env["AWS_ENDPOINT_URL"]) == before
    assert not log.exists()


def test_a_release_deployed_with_repo_rolls_back_with_repo_only(aws_env, farms, tmp_path):
    other = other_repo(tmp_path)
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    first, second = git(other, "rev-parse", "HEAD~1"), git(other, "rev-parse", "HEAD")
    for sha in (first, second):
        assert_ok(farm("deploy", "-f", "demo", "--repo", str(other), "--ref", sha, env=env))
    rows = json.loads(farm("releases", "-f", "demo", "--json", env=env).stdout)["releases"]
    assert [(r["sha"], r["app"], r["repo"]) for r in rows] == [
        (second, "bookshelf", str(other.resolve())),
        (first, "bookshelf", str(other.resolve())),
    ]
    # Not in farmhand_app_repo (the sample app), whatever .farm/archives holds: refused.
    before = parameters(aws_env["AWS_ENDPOINT_URL"])
    refused = farm("rollback", "-f", "demo", env=env)
    assert_one_line_error(refused, f"v1's commit {first[:7]} is not in the app repository {SAMPLE_APP}")
    assert parameters(aws_env["AWS_ENDPOINT_URL"]) == before
    # With --repo, as it was deployed: a new release of that commit, from its archive.
    rolled = farm("rollback", "-f", "demo", "--repo", str(other), env=env)
    assert_ok(rolled)
    assert "Released v3" in rolled.stdout
    shipped = json.loads(calls.with_suffix(".log.json").read_text().splitlines()[-1])["farmhand_release"]
    assert (shipped["sha"], Path(shipped["archive"]).name) == (first, f"{first}.tar.gz")
    assert Path(shipped["archive"]).parent.name == "bookshelf"


def test_deploying_the_running_commit_as_another_app_is_a_new_release(aws_env, farms, tmp_path):
    sha = head_of_sample_app()
    record(aws_env, sha, app="shop")
    path, _ = fake_playbook(tmp_path, OK_RECAP)
    proc = farm("deploy", "-f", "demo", env={**aws_env, "PATH": path})
    assert_ok(proc)
    assert f"Released v2 ({sha[:7]})" in proc.stdout


def test_a_config_release_is_of_the_app_its_code_is_of(aws_env, farms, tmp_path):
    path, _ = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    assert_ok(farm("config:set", "-f", "demo", "A=1", env=env))  # before any deploy: no code
    assert_ok(farm("deploy", "-f", "demo", env=env))
    assert_ok(farm("config:set", "-f", "demo", "A=2", env=env))
    rows = json.loads(farm("releases", "-f", "demo", "--json", env=env).stdout)["releases"]
    assert [(r["kind"], r["app"], r["repo"]) for r in rows] == [
        ("config", "bookshelf", str(SAMPLE_APP)),
        ("deploy", "bookshelf", str(SAMPLE_APP)),
        ("config", "bookshelf", ""),
    ]


def test_releases_show_the_app_only_when_one_is_of_another_app(aws_env, farms, tmp_path):
    sha = head_of_sample_app()
    record(aws_env, sha, app="")  # made before releases knew their app
    record(aws_env, sha)
    plain = farm("releases", "-f", "demo", env=aws_env)
    assert_ok(plain)
    header = next(line for line in plain.stdout.splitlines() if "VERSION" in line)
    assert header.split() == ["VERSION", "STATUS", "COMMIT", "DESCRIPTION", "BY", "CREATED"]
    record(aws_env, sha, app="shop")
    mixed = farm("releases", "-f", "demo", env=aws_env)
    assert_ok(mixed)
    lines = mixed.stdout.splitlines()
    header = next(line for line in lines if "VERSION" in line)
    assert header.split() == ["VERSION", "STATUS", "COMMIT", "APP", "DESCRIPTION", "BY", "CREATED"]
    rows = [line.split() for line in lines[lines.index(header) + 1 :] if line.strip()]
    apps = {(r[1:] if r[0] == "*" else r)[0]: (r[1:] if r[0] == "*" else r)[3] for r in rows}
    assert apps == {"v3": "shop", "v2": "bookshelf", "v1": "?"}


# -- the app's contract: its Procfile, the farm's formation, its Gemfile --------------------------

NOTICEBOARD_PROCFILE = (
    "web: bundle exec unicorn -p $PORT\nnotifier: bin/notifier\nrelease: bin/rails db:migrate\n"
)
SIDEKIQ_PROCFILE = "web: bundle exec unicorn -p $PORT\nworker: bundle exec sidekiq"
SIDEKIQ_GEMFILE = 'gem "unicorn"\ngem "sidekiq"\n'


def app_with(tmp_path: Path, files: dict[str, str]) -> tuple[Path, str]:
    """An app repository whose one commit holds FILES; its path and commit."""
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    for name, text in {"config.ru": "run ->(env) { [200, {}, ['ok']] }\n", **files}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the app")
    return repo, git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    ("files", "formation", "message"),
    [
        (
            {
                "Procfile": "web: bundle exec unicorn\nworker bundle exec sidekiq\n",
                "Gemfile": 'gem "unicorn"\n',
            },
            "",
            "Procfile line 2 is not `type: command`: 'worker bundle exec sidekiq'",
        ),
        (
            {"Procfile": "worker: bin/notifier\n", "Gemfile": 'gem "unicorn"\n'},
            "",
            "Procfile declares no web process type (worker)",
        ),
        (
            {
                "Procfile": "web: bundle exec unicorn\nrelease: bin/rails db:migrate\n",
                "Gemfile": 'gem "unicorn"\n',
            },
            "",
            "farm 'demo''s worker hosts (demo-worker-cron-1) run no process type: the Procfile declares only "
            "web, release",
        ),
        (
            {"Procfile": NOTICEBOARD_PROCFILE, "Gemfile": 'gem "puma"\n'},
            "",
            "the app's Gemfile has no unicorn gem: Farmhand needs it (its web hosts run the app under "
            "Unicorn)",
        ),
        (
            {"Procfile": NOTICEBOARD_PROCFILE, "Gemfile": 'gem "unicorn"\n'},
            "farmhand_formation:\n  clock: {count: 1}\n",
            "farmhand_formation places 'clock', which the Procfile does not declare "
            "(it declares web, notifier, release)",
        ),
        (
            {"Procfile": NOTICEBOARD_PROCFILE, "Gemfile": 'gem "unicorn"\n'},
            "farmhand_formation:\n  notifier: {count: 0}\n",
            "farmhand_formation 'notifier': count is processes per host, 1 to 32, not 0",
        ),
        (
            {"Procfile": SIDEKIQ_PROCFILE + " -C config/workers.yml\n", "Gemfile": SIDEKIQ_GEMFILE},
            "",
            "Procfile line 2 (worker): sidekiq -C config/workers.yml: the app has no such file",
        ),
        (
            {
                "Procfile": SIDEKIQ_PROCFILE + "\n",
                "Gemfile": SIDEKIQ_GEMFILE,
                "config/sidekiq.yml": ":concurrency: <%= ENV.fetch('THREADS', 5) %>\n",
            },
            "",
            "Procfile line 2 (worker): config/sidekiq.yml sets concurrency with ERB, which Farmhand cannot "
            "evaluate: give -c on the Procfile line",
        ),
    ],
    ids=[
        "bad-line", "no-web", "idle-worker-hosts", "no-unicorn", "unknown-type", "bad-count",
        "no-sidekiq-config", "sidekiq-config-erb",
    ],
)  # fmt: skip
def test_a_deploy_that_breaks_the_apps_contract_is_refused_and_changes_nothing(
    aws_env, farms, tmp_path, guard, files, formation, message
):
    repo, sha = app_with(tmp_path, files)
    view = make_project(tmp_path / "project", {"farm_demo/app.yml": formation or "---\n"})
    path, log = guard
    before = parameters(aws_env["AWS_ENDPOINT_URL"])
    proc = farm(
        "deploy", "-f", "demo", "--repo", str(repo), env={**aws_env, "FARMHAND_HOME": str(view), "PATH": path}
    )
    assert_one_line_error(proc, f"bookshelf at {sha[:7]}: {message}")
    assert parameters(aws_env["AWS_ENDPOINT_URL"]) == before  # no release, no config version
    assert not log.exists()  # no playbook


def test_an_app_that_keeps_the_contract_deploys(aws_env, farms, tmp_path):
    repo, sha = app_with(tmp_path, {"Procfile": NOTICEBOARD_PROCFILE, "Gemfile": 'gem "unicorn"\n'})
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    proc = farm("deploy", "-f", "demo", "--repo", str(repo), env={**aws_env, "PATH": path})
    assert_ok(proc)
    assert f"Released v1 ({sha[:7]}) to demo" in proc.stdout
    assert json.loads(calls.with_suffix(".log.json").read_text())["farmhand_release"]["release_phase"] is True


def test_an_app_whose_sidekiq_reads_its_config_file_deploys(aws_env, farms, tmp_path):
    files = {
        "Procfile": SIDEKIQ_PROCFILE + " -C config/workers.yml\n",
        "Gemfile": SIDEKIQ_GEMFILE,
        "config/workers.yml": ":concurrency: 3\n:queues: [books, [default, 2]]\nproduction: {timeout: 60}\n",
    }
    repo, sha = app_with(tmp_path, files)
    path, _ = fake_playbook(tmp_path, OK_RECAP)
    proc = farm("deploy", "-f", "demo", "--repo", str(repo), env={**aws_env, "PATH": path})
    assert_ok(proc)
    assert f"Released v1 ({sha[:7]}) to demo" in proc.stdout


def test_the_example_apps_keep_the_contract():
    """Both example apps pass the checks a deploy makes, on a farm with web and worker hosts."""
    from farmhand.core import procfile

    for name in ("bookshelf", "noticeboard"):
        root = REPO_ROOT / "examples" / name
        text = (root / "Procfile").read_text() if (root / "Procfile").exists() else None
        contract = procfile.parse(text)
        placements = procfile.formation(contract, {})
        procfile.check_hosts(placements, contract, {"web": ["w"], "worker": ["k"]}, "demo")
        procfile.check_gemfile(contract, (root / "Gemfile").read_text())
    noticeboard = procfile.parse((REPO_ROOT / "examples/noticeboard/Procfile").read_text())
    assert noticeboard.release_command == "bin/rails db:migrate"
    assert [(t.name, t.kind) for t in noticeboard.process_types] == [("notifier", "service")]
