"""PGTune's formulas for 8 GB, 4 CPUs, SSD, web profile; scram-only access; the app's database."""

import pytest

# podman exec is many times faster than a round trip through Ansible for every command.
testinfra_hosts = ["podman://molecule-postgres-tuned"]

EXPECTED = {
    "max_connections": "200",
    "shared_buffers": "2GB",
    "effective_cache_size": "6GB",
    "maintenance_work_mem": "512MB",
    "wal_buffers": "16MB",
    # (8 GB - 2 GB) / ((200 connections + 4 workers) * 3) = 10280 kB
    "work_mem": "10280kB",
    "min_wal_size": "1GB",
    "max_wal_size": "4GB",
    "checkpoint_completion_target": "0.9",
    "default_statistics_target": "100",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "max_worker_processes": "4",
    "max_parallel_workers_per_gather": "2",
    "max_parallel_workers": "4",
    "max_parallel_maintenance_workers": "2",
    "jit": "off",
    "wal_compression": "lz4",
    "password_encryption": "scram-sha-256",
    "log_min_duration_statement": "500ms",
}


def show(host, name):
    return host.check_output(f"sudo -u postgres psql -Atc 'SHOW {name}'")


@pytest.mark.parametrize(("name", "value"), sorted(EXPECTED.items()))
def test_setting_is_live(host, name, value):
    assert show(host, name) == value


def test_nothing_waits_for_a_restart(host):
    assert (
        host.check_output(
            "sudo -u postgres psql -Atc 'SELECT count(*) FROM pg_settings WHERE pending_restart'"
        )
        == "0"
    )


def test_pg_hba_has_no_trust_and_only_scram_over_the_network(host):
    lines = [
        line.split()
        for line in host.file("/etc/postgresql/15/main/pg_hba.conf").content_string.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all("trust" not in fields for fields in lines)
    assert all(fields[-1] == "scram-sha-256" for fields in lines if fields[0] == "host")
    assert ["host", "bookshelf", "bookshelf", "10.89.0.0/24", "scram-sha-256"] in lines


def test_app_user_logs_in_with_its_password_over_tcp(host):
    ok = host.run(
        "PGPASSWORD=molecule-only-password psql -h 127.0.0.1 -U bookshelf -d bookshelf -Atc 'select 1'"
    )
    assert ok.rc == 0, ok.stderr
    assert ok.stdout.strip() == "1"
    bad = host.run("PGPASSWORD=wrong psql -h 127.0.0.1 -U bookshelf -d bookshelf -Atc 'select 1'")
    assert bad.rc != 0
    assert "password authentication failed" in bad.stderr


def test_database_is_owned_by_the_app_user(host):
    query = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname='bookshelf'"
    owner = host.check_output(f'sudo -u postgres psql -Atc "{query}"')
    assert owner == "bookshelf"


def test_listens_on_the_network(host):
    assert host.socket("tcp://0.0.0.0:5432").is_listening
