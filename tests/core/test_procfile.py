"""The app's contract (farmhand.core.procfile): the Procfile's types, the formation, their checks."""

from __future__ import annotations

import pytest

from farmhand.core import procfile
from farmhand.core.procfile import ProcfileError

NOTICEBOARD = """\
web: bundle exec unicorn -p $PORT -c ./config/unicorn.rb
notifier: bin/rails runner 'Notifier.run'
release: bin/rails db:migrate
"""


def test_a_procfile_names_its_types_in_order_with_how_each_runs():
    parsed = procfile.parse(
        "# the app's processes\n\n"
        "web: bundle exec unicorn -p $PORT\n"
        "worker:   bundle exec sidekiq -q critical,2 --queue default -c 7 --timeout=25 -e production\n"
        "mailer: sidekiq\n"
        "notifier: bin/rails runner 'Notifier.run'\n"
        "release: bin/rails db:migrate && bin/rails cache:clear\n"
    )
    assert parsed.declared
    assert [(t.name, t.kind) for t in parsed.types.values()] == [
        ("web", "web"),
        ("worker", "sidekiq"),
        ("mailer", "sidekiq"),
        ("notifier", "service"),
        ("release", "release"),
    ]
    assert parsed.types["worker"].sidekiq == {
        "queues": ["critical,2", "default"],
        "concurrency": 7,
        "timeout": 25,
    }
    assert parsed.types["mailer"].sidekiq == {"queues": ["default"]}  # Sidekiq's own default queue
    assert parsed.types["notifier"].command == "bin/rails runner 'Notifier.run'"
    assert parsed.release_command == "bin/rails db:migrate && bin/rails cache:clear"
    assert [t.name for t in parsed.process_types] == ["worker", "mailer", "notifier"]


def test_without_a_procfile_the_release_phase_migrates():
    parsed = procfile.parse(None)
    assert not parsed.declared and parsed.types == {}
    assert parsed.release_command == "bundle exec rails db:migrate"
    assert procfile.parse("web: bundle exec unicorn\n").release_command == "bundle exec rails db:migrate"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web bundle exec unicorn\n", "Procfile line 1 is not `type: command`: 'web bundle exec unicorn'"),
        (
            "web: x\nWeb-2: y\n",
            "Procfile line 2: process type 'Web-2' must be lowercase letters, digits and _",
        ),
        ("web: x\n\nweb: y\n", "Procfile line 3 declares 'web' again (it is on an earlier line)"),
        ("web: x\nworker:\n", "Procfile line 2: process type 'worker' has no command"),
        ("# nothing\n\n", "Procfile declares no process type: write one `type: command` per line"),
        ("worker: sidekiq\n", "Procfile declares no web process type (worker): Farmhand serves the app"),
        ("web: x\nworker: sidekiq -q 'default\n", "Procfile line 2 (worker): No closing quotation in"),
        (
            "web: x\nworker: bundle exec sidekiq -C config/sidekiq.yml\n",
            "Procfile line 2 (worker): Farmhand runs Sidekiq with -q, -c and -t from the Procfile; -C is not",
        ),
        ("web: x\nworker: sidekiq -c\n", "Procfile line 2 (worker): sidekiq -c needs a value"),
        (
            "web: x\nworker: sidekiq -c $THREADS\n",
            "Procfile line 2 (worker): sidekiq -c takes a whole number of at least 1, not '$THREADS'",
        ),
        ("web: x\nworker: sidekiq -t0\n", "sidekiq -t takes a whole number of at least 1, not '0'"),
    ],
)
def test_a_bad_procfile_is_one_line_naming_the_line(text, message):
    with pytest.raises(ProcfileError) as caught:
        procfile.parse(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_the_formation_places_each_type_once_per_worker_host_unless_told():
    parsed = procfile.parse(
        "web: unicorn\nworker: sidekiq -q default\nmailer: sidekiq -q mail -c 2\n"
        "notifier: bin/notifier\nrelease: bin/rails db:migrate\n"
    )
    placements = procfile.formation(parsed, {"worker": {"count": 3}, "web": {"role": "web"}})
    assert [(p.type.name, p.role, p.count) for p in placements] == [
        ("worker", "worker", 3),
        ("mailer", "worker", 1),
        ("notifier", "worker", 1),
    ]
    assert procfile.sidekiq_processes(placements) == [
        {"name": "worker_1", "queues": ["default"]},
        {"name": "worker_2", "queues": ["default"]},
        {"name": "worker_3", "queues": ["default"]},
        {"name": "mailer", "queues": ["mail"], "concurrency": 2},
    ]
    assert procfile.services(placements) == [{"name": "notifier", "command": "bin/notifier", "count": 1}]
    assert procfile.formation(procfile.parse(None), None) == []


@pytest.mark.parametrize(
    ("formation", "message"),
    [
        (
            {"clock": {"count": 1}},
            "farmhand_formation places 'clock', which the Procfile does not declare "
            "(it declares web, notifier, release)",
        ),
        ({"release": {"count": 1}}, "farmhand_formation places release: it runs once per deploy, on no host"),
        (
            {"notifier": {"count": 0}},
            "farmhand_formation 'notifier': count is processes per host, 1 to 32, not 0",
        ),
        ({"notifier": {"count": "2"}}, "count is processes per host, 1 to 32, not '2'"),
        (
            {"notifier": {"role": "db"}},
            "farmhand_formation puts 'notifier' on role 'db': process types other than "
            "web run on worker hosts",
        ),
        ({"notifier": {"hosts": 2}}, "farmhand_formation 'notifier' must be {role: ROLE, count: N}"),
        ({"notifier": 2}, "farmhand_formation 'notifier' must be {role: ROLE, count: N}, not 2"),
        ({"web": {"role": "worker"}}, "farmhand_formation: web runs on the web hosts (one Unicorn per host)"),
        (["notifier"], "farmhand_formation must map process types to {role: ROLE, count: N}"),
    ],
)
def test_a_bad_formation_is_one_line(formation, message):
    with pytest.raises(ProcfileError) as caught:
        procfile.formation(procfile.parse(NOTICEBOARD), formation)
    assert message in str(caught.value)


def test_a_formation_for_an_app_without_a_procfile_is_refused():
    with pytest.raises(
        ProcfileError, match=r"places 'worker', which the Procfile does not declare \(the app has none\)"
    ):
        procfile.formation(procfile.parse(None), {"worker": {"count": 2}})


def test_every_type_needs_hosts_and_every_worker_host_a_type():
    parsed = procfile.parse(NOTICEBOARD)
    placements = procfile.formation(parsed, {})
    procfile.check_hosts(placements, parsed, {"web": ["w1"], "worker": ["k1"]}, "demo")
    with pytest.raises(ProcfileError) as caught:
        procfile.check_hosts(placements, parsed, {"web": ["w1"], "worker": []}, "demo")
    assert str(caught.value) == (
        "process type 'notifier' has no hosts: farm 'demo' has no worker hosts "
        "(farm ps:scale -f demo worker=1)"
    )
    web_only = procfile.parse("web: unicorn\nrelease: bin/rails db:migrate\n")
    with pytest.raises(ProcfileError) as caught:
        procfile.check_hosts([], web_only, {"web": ["w1"], "worker": ["k1", "k2"]}, "demo")
    assert str(caught.value) == (
        "farm 'demo''s worker hosts (k1, k2) run no process type: the Procfile declares only web, release "
        "(add a worker type, or farm ps:scale -f demo worker=0)"
    )
    procfile.check_hosts([], web_only, {"web": ["w1"], "worker": []}, "demo")
    # Without a Procfile the workers run sidekiq_worker_processes: nothing to check here.
    procfile.check_hosts([], procfile.parse(None), {"web": ["w1"], "worker": ["k1"]}, "demo")


def test_the_gemfile_holds_what_farmhand_runs():
    parsed = procfile.parse("web: x\nworker: bundle exec sidekiq\n")
    procfile.check_gemfile(parsed, 'gem "rails"\ngem "unicorn", require: false\ngem("sidekiq", "~> 6.4")\n')
    with pytest.raises(ProcfileError, match=r"^the app's Gemfile has no unicorn gem: Farmhand needs it"):
        procfile.check_gemfile(parsed, "gem 'puma'\ngem 'sidekiq'\n# gem 'unicorn'\n")
    with pytest.raises(
        ProcfileError, match=r"no sidekiq gem: Farmhand needs it \(a process type runs sidekiq\)"
    ):
        procfile.check_gemfile(parsed, "gem 'unicorn'\n")
    with pytest.raises(ProcfileError, match=r"^the app has no Gemfile"):
        procfile.check_gemfile(parsed, None)
    procfile.check_gemfile(procfile.parse(NOTICEBOARD), "gem 'unicorn'\n")  # no Sidekiq type: no sidekiq gem


def test_the_release_command_filter_reads_a_procfile_as_the_cli_does():
    import importlib.util

    from ansible.errors import AnsibleFilterError
    from conftest import REPO_ROOT

    spec = importlib.util.spec_from_file_location("procfile_filter", REPO_ROOT / "plugins/filter/procfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    filters = module.FilterModule().filters()
    release_command = filters["farmhand_release_command"]
    assert release_command(NOTICEBOARD) == "bin/rails db:migrate"
    assert release_command(None) == "bundle exec rails db:migrate"
    with pytest.raises(AnsibleFilterError, match=r"^Procfile line 1 is not `type: command`"):
        release_command("nonsense\n")
    # What a worker host runs: the Procfile's types as the formation places them.
    processes = filters["farmhand_processes"]
    assert processes(NOTICEBOARD + "worker: bundle exec sidekiq -q mail\n", {"notifier": {"count": 2}}) == {
        "declared": True,
        "sidekiq": [{"name": "worker", "queues": ["mail"]}],
        "services": [{"name": "notifier", "command": "bin/rails runner 'Notifier.run'", "count": 2}],
    }
    assert processes(None, {}) == {"declared": False, "sidekiq": [], "services": []}
    with pytest.raises(AnsibleFilterError, match=r"^farmhand_formation places 'clock'"):
        processes(NOTICEBOARD, {"clock": {"count": 1}})
