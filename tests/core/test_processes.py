"""What `farm ps` counts on a host (farmhand.core.processes.tally): the farm's app only."""

from __future__ import annotations

from farmhand.core import processes

TITLES = [
    "unicorn master -D -c /srv/noticeboard/shared/config/unicorn.rb -E production",
    "unicorn worker[0] -D -c /srv/noticeboard/shared/config/unicorn.rb -E production",
    "unicorn worker[1] -D -c /srv/noticeboard/shared/config/unicorn.rb -E production",
    # The previous app's, left running on the host: not the farm's.
    "unicorn worker[0] -D -c /srv/bookshelf/shared/config/unicorn.rb -E production",
    "sidekiq 6.4.1 bookshelf-books [1 of 2 busy]",
    # The app's own: one quieted by a release switch.
    "sidekiq 6.4.1 noticeboard-mail [2 of 5 busy]",
    "sidekiq 6.4.1 noticeboard-mail [1 of 5 busy] stopping",
    "/usr/bin/ruby3.1 bin/rails runner Notifier.run",
]
UNITS = [
    "noticeboard-notifier@1.service",
    "noticeboard-notifier@2.service",
    "noticeboard-clock@1.service",
    "bookshelf-notifier@1.service",
    "noticeboard-processes.target",
]


def test_a_host_counts_only_the_apps_processes():
    found = processes.tally(TITLES, UNITS, "noticeboard", "/srv/noticeboard")
    assert found == {
        "unicorn_workers": 2,
        "sidekiq": [
            {"busy": 2, "threads": 5, "quiet": False},
            {"busy": 1, "threads": 5, "quiet": True},
        ],
        "services": {"notifier": 2, "clock": 1},
    }
    other = processes.tally(TITLES, UNITS, "bookshelf", "/srv/bookshelf")
    assert (other["unicorn_workers"], len(other["sidekiq"]), other["services"]) == (1, 1, {"notifier": 1})


def test_the_probe_carries_the_tally_it_runs_on_the_host():
    compile(processes.PROBE, "probe", "exec")  # a whole script: the tally's source, then its use
    assert "def tally(" in processes.PROBE and "sys.argv[1], sys.argv[2]" in processes.PROBE
    assert "def live_release(" in processes.PROBE and "live_release(root)" in processes.PROBE


def test_a_host_says_which_release_current_points_at(tmp_path):
    root = tmp_path / "srv" / "noticeboard"
    assert processes.live_release(str(root)) == ""  # nothing deployed yet
    release = root / "releases" / "3-0a1b2c3"
    release.mkdir(parents=True)
    (release / "RELEASE").write_text("v3\n")
    (root / "current").symlink_to(release)
    assert processes.live_release(str(root)) == "v3"


def test_ps_sums_each_process_type_over_the_worker_hosts():
    from farmhand.core.inventory import Host

    def worker(name: str, services: dict[str, int]) -> processes.HostProcesses:
        host = Host(name, ("worker",), "i-1", "10.0.0.1", "running", "t3.small")
        return processes.HostProcesses(host, services=services)

    summary = processes.summary_by_type(
        [worker("w1", {"notifier": 2}), worker("w2", {"notifier": 1, "clock": 1})]
    )
    assert summary["worker"]["services"] == {"notifier": 3, "clock": 1}
    assert worker("w1", {"notifier": 2}).as_dict()["services"] == {"notifier": 2}
