"""Reaching hosts as Ansible does (farmhand.core.ssh): host variables, then the environment."""

from __future__ import annotations

import pytest

from farmhand.core.inventory import Host
from farmhand.core.ssh import connection, host_connection, remote_argv, scp_argv, ssh_argv


def test_host_vars_win_over_the_environment_as_in_ansible():
    hostvars = {
        "ansible_host": "10.0.0.9",
        "login": "deploy",
        "ansible_user": "{{ login }}",
        "ansible_port": 2222,
        "ansible_ssh_private_key_file": "/keys/farm",
        "ansible_ssh_common_args": "-o ProxyJump=bastion.example.com",
        "ansible_ssh_extra_args": "-o ServerAliveInterval=5",
    }
    env = {
        "ANSIBLE_PRIVATE_KEY_FILE": "/other",
        "ANSIBLE_SSH_COMMON_ARGS": "-o X=y",
        "ANSIBLE_REMOTE_USER": "nobody",
    }
    conn = connection("web-1", hostvars, env)
    assert ssh_argv(conn, tty=False)[5:] == [
        "-T", "-p", "2222", "-i", "/keys/farm", "-o", "ProxyJump=bastion.example.com",
        "-o", "ServerAliveInterval=5", "deploy@10.0.0.9",
    ]  # fmt: skip
    assert scp_argv(conn, ["web-1:x"], "y")[-8:] == [
        "-P", "2222", "-i", "/keys/farm", "-o", "ProxyJump=bastion.example.com", "web-1:x", "y",
    ]  # fmt: skip
    assert conn.scp_path("/tmp") == "deploy@10.0.0.9:/tmp"


def test_the_environment_fills_in_what_the_host_does_not_set():
    host = Host("db-1", ("db",), "i-1", "10.0.0.4", "running", "t3.small")
    env = {"ANSIBLE_REMOTE_USER": "admin", "ANSIBLE_REMOTE_PORT": "2200", "ANSIBLE_PRIVATE_KEY_FILE": "/k"}
    argv = remote_argv(host_connection(host, env), ["echo", "a b"])
    assert argv[0] == "ssh" and "StrictHostKeyChecking=accept-new" in argv
    assert argv[-7:] == ["-p", "2200", "-i", "/k", "admin@10.0.0.4", "--", "echo 'a b'"]


def test_a_template_that_cannot_be_worked_out_is_a_clear_error():
    from farmhand.core.errors import FarmError

    with pytest.raises(FarmError, match="cannot work out ansible_user for web-1"):
        connection("web-1", {"ansible_user": "{{ nowhere }}"}, {})
