"""PgBouncer pools the app's connections (transaction mode, scram only) and obeys its admin console."""

testinfra_hosts = ["podman://molecule-pgbouncer"]

PSQL = "env PGPASSWORD={password} psql -X -At -h 127.0.0.1 -p 6432 -U bookshelf bookshelf -c {sql!r}"


def app_query(host, sql, password="molecule-only-password"):
    return host.run(PSQL.format(password=password, sql=sql))


def admin(host, *commands):
    return host.run("/usr/local/sbin/pgbouncer-admin " + " ".join(f"'{c}'" for c in commands))


def test_service_runs_and_listens_on_loopback_only(host):
    service = host.service("pgbouncer")
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://127.0.0.1:6432").is_listening
    assert not host.socket("tcp://0.0.0.0:6432").is_listening


def test_the_app_user_connects_through_pgbouncer(host):
    result = app_query(host, "select current_user, current_database()")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "bookshelf|bookshelf"


def test_a_wrong_password_is_refused(host):
    result = app_query(host, "select 1", password="wrong")
    assert result.rc != 0
    assert "authentication failed" in result.stderr


def test_secrets_file_is_private_and_there_is_no_trust(host):
    userlist = host.file("/etc/pgbouncer/userlist.txt")
    assert (userlist.user, userlist.group, userlist.mode) == ("postgres", "postgres", 0o600)
    hba = host.file("/etc/pgbouncer/hba.conf").content_string
    assert "trust" not in hba
    assert "host  bookshelf  bookshelf  127.0.0.1/32  scram-sha-256" in hba


def test_transaction_pooling(host):
    pools = admin(host, "SHOW POOLS")
    assert pools.rc == 0, pools.stderr
    assert "transaction" in pools.stdout


def test_pause_holds_queries_until_resume(host):
    assert admin(host, "PAUSE").rc == 0
    try:
        held = host.run("timeout 2 " + PSQL.format(password="molecule-only-password", sql="select 42"))
    finally:
        resumed = admin(host, "RESUME")
    assert held.rc == 124, held.stderr  # still waiting after 2 s: held by PAUSE
    assert resumed.rc == 0, resumed.stderr
    assert app_query(host, "select 42").stdout.strip() == "42"


def test_a_staged_configuration_switches_in_with_reload(host):
    staged = host.run(
        "sed 's/port=5432/port=5433/' /etc/pgbouncer/pgbouncer.ini > /etc/pgbouncer/pgbouncer.ini.next"
    )
    assert staged.rc == 0
    switched = admin(host, "--switch", "RELOAD")
    assert switched.rc == 0, switched.stderr
    assert "port=5433" in host.file("/etc/pgbouncer/pgbouncer.ini").content_string
    assert not host.file("/etc/pgbouncer/pgbouncer.ini.next").exists
    assert host.run("sed -i 's/port=5433/port=5432/' /etc/pgbouncer/pgbouncer.ini").rc == 0
    assert admin(host, "RELOAD").rc == 0
    assert app_query(host, "select 7").stdout.strip() == "7"
