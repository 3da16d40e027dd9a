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
    assert parsed.types["mailer"].sidekiq == {}  # the line sets nothing: Sidekiq's config file may
    completed = procfile.with_sidekiq_configs(parsed, {})  # an app without one: Sidekiq's defaults
    assert completed.types["mailer"].sidekiq == {"queues": ["default"]}  # Sidekiq's own default queue
    assert completed.types["worker"].sidekiq == parsed.types["worker"].sidekiq
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
            "web: x\nworker: bundle exec sidekiq -C config/sidekiq.yml -r ./lib/jobs.rb\n",
            "Procfile line 2 (worker): Farmhand runs Sidekiq with -q, -c, -t and -C from the Procfile; "
            "-r is not",
        ),
        (
            "web: x\nworker: sidekiq -C /etc/sidekiq.yml\n",
            "Procfile line 2 (worker): sidekiq -C must name a file in the app, relative to its root "
            "(letters, digits, . _ - /), not '/etc/sidekiq.yml'",
        ),
        ("web: x\nworker: sidekiq --config=../shared/sidekiq.yml\n", "not '../shared/sidekiq.yml'"),
        ("web: x\nworker: sidekiq -C 'config/my workers.yml'\n", "not 'config/my workers.yml'"),
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
    # The Sidekiq config files a worker host reads from the release, and what it runs with them.
    sidekiq = "web: unicorn\nworker: bundle exec sidekiq -C config/workers.yml\n"
    assert filters["farmhand_sidekiq_config_paths"](sidekiq) == ["config/workers.yml"]
    assert filters["farmhand_sidekiq_config_paths"](None) == []
    configs = {"config/workers.yml": ":queues: [books, default]\nstaging:\n  :timeout: 60\n"}
    assert processes(sidekiq, {}, configs, "staging")["sidekiq"] == [
        {"name": "worker", "config": "config/workers.yml", "queues": ["books", "default"], "timeout": 60}
    ]
    with pytest.raises(
        AnsibleFilterError, match=r"^Procfile line 2 \(worker\): sidekiq -C config/workers.yml: the"
    ):
        processes(sidekiq, {}, {})


# -- Sidekiq's config file -----------------------------------------------------------------------

SIDEKIQ_YML = """\
# Sidekiq reads this with ERB first: comments and output tags Farmhand does not need are fine.
<%# the team's defaults %>
:concurrency: 4
:queues:
  - critical
  - [default, 2]
  - low
:max_retries: <%= ENV.fetch("MAX_RETRIES", 7) %>
production:
  :timeout: 40
staging:
  concurrency: 2
  queues: [default]
"""


def test_a_sidekiq_type_reads_its_config_file_as_sidekiq_does():
    parsed = procfile.parse(
        "web: unicorn\n"
        "worker: bundle exec sidekiq -C ./config/workers.yml -c 7\n"
        "mailer: bundle exec sidekiq -q mail\n"
        "all: bundle exec sidekiq -q a -c 1 -t 5 -C config/erb_everywhere.yml\n"
    )
    assert parsed.types["worker"].sidekiq == {"config": "config/workers.yml", "concurrency": 7}
    assert procfile.sidekiq_config_paths(parsed) == [
        "config/workers.yml",
        "config/sidekiq.yml",
        "config/sidekiq.yml.erb",
        "config/erb_everywhere.yml",
    ]
    # A line that gives every setting and names no file leaves nothing to read.
    assert procfile.sidekiq_config_paths(procfile.parse("web: x\nworker: sidekiq -q a -c 1 -t 5\n")) == []
    files = {
        "config/workers.yml": SIDEKIQ_YML,
        "config/sidekiq.yml": None,
        "config/sidekiq.yml.erb": ":queues: [erb_one]\n:timeout: 9\n",
        # Every setting is on the line: the file is left to Sidekiq, whatever ERB it holds.
        "config/erb_everywhere.yml": "<% if true %>:concurrency: 3<% end %>\n",
    }
    read = procfile.with_sidekiq_configs(parsed, files, "production")
    # The line's -c wins; the production section's timeout is over the top level; [name, weight]
    # is -q's name,weight.
    assert read.types["worker"].sidekiq == {
        "config": "config/workers.yml",
        "concurrency": 7,
        "queues": ["critical", "default,2", "low"],
        "timeout": 40,
    }
    # No -C: the first of the files Sidekiq reads by itself (its -q still wins).
    assert read.types["mailer"].sidekiq == {"queues": ["mail"], "timeout": 9}
    assert read.types["all"].sidekiq == parsed.types["all"].sidekiq
    staging = procfile.with_sidekiq_configs(parsed, files, "staging").types["worker"].sidekiq
    assert (staging["queues"], staging["concurrency"], "timeout" in staging) == (["default"], 7, False)
    # What the worker hosts run: -C passed as given, so the file's other settings apply.
    placements = procfile.formation(read, {"worker": {"count": 2}})
    assert procfile.sidekiq_processes(placements)[:2] == [
        {"name": f"worker_{i}", "config": "config/workers.yml", "concurrency": 7,
         "queues": ["critical", "default,2", "low"], "timeout": 40}
        for i in (1, 2)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "files", "message"),
    [
        (
            "sidekiq -C config/workers.yml",
            {},
            "Procfile line 2 (worker): sidekiq -C config/workers.yml: the app has no such file",
        ),
        (
            "sidekiq",
            {"config/sidekiq.yml": ":concurrency: <%= ENV.fetch('THREADS', 5) %>\n"},
            "Procfile line 2 (worker): config/sidekiq.yml sets concurrency with ERB, which Farmhand cannot "
            "evaluate: give -c on the Procfile line",
        ),
        (
            "sidekiq -q a -c 2",
            {"config/sidekiq.yml": "<% 3.times do %>\n:timeout: 1\n<% end %>\n"},
            "Procfile line 2 (worker): config/sidekiq.yml has ERB code Farmhand cannot read: give -t on the "
            "Procfile line",
        ),
        ("sidekiq", {"config/sidekiq.yml": ":queues: [a\n"}, "config/sidekiq.yml is not YAML Sidekiq can"),
        (
            "sidekiq",
            {"config/sidekiq.yml": "- a\n- b\n"},
            "Procfile line 2 (worker): config/sidekiq.yml must be a mapping of Sidekiq's settings, not list",
        ),
        ("sidekiq", {"config/sidekiq.yml": "production: 3\n"}, "sidekiq.yml production: must be a mapping"),
        ("sidekiq", {"config/sidekiq.yml": ":queues: default\n"}, "queues must be a list of queue names"),
        ("sidekiq", {"config/sidekiq.yml": ":queues: [[a, 0]]\n"}, "queue 'a' has weight 0: a whole number"),
        ("sidekiq", {"config/sidekiq.yml": ":queues: [[a, 1, 2]]\n"}, "queue ['a', 1, 2] is not a name"),
        ("sidekiq", {"config/sidekiq.yml": ":queues: [a, [a, 2]]\n"}, "queue 'a' is listed twice"),
        (
            "sidekiq",
            {"config/sidekiq.yml": ":concurrency: many\n"},
            "config/sidekiq.yml: concurrency must be a whole number of at least 1, not 'many'",
        ),
        ("sidekiq", {"config/sidekiq.yml.erb": ":timeout: 0\n"}, "timeout must be a whole number of at"),
    ],
    ids=[
        "no-file", "erb-value", "erb-code", "not-yaml", "not-a-mapping", "bad-section", "queues-not-list",
        "zero-weight", "bad-pair", "twice", "bad-number", "erb-file-zero",
    ],
)  # fmt: skip
def test_a_sidekiq_config_farmhand_cannot_read_is_one_line(line, files, message):
    parsed = procfile.parse(f"web: unicorn\nworker: {line}\n")
    with pytest.raises(ProcfileError) as caught:
        procfile.with_sidekiq_configs(parsed, files)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2
