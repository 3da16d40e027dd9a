"""The SMTP sink takes every mail on loopback and keeps each one as a file in its Maildir."""

testinfra_hosts = ["podman://molecule-smtp-sink"]

SEND = """python3 - <<'EOF'
import smtplib
from email.message import EmailMessage
msg = EmailMessage()
msg["From"] = "cron@farm.test"
msg["To"] = "ops@farm.test"
msg["Subject"] = "{subject}"
msg.set_content("the job failed")
with smtplib.SMTP("127.0.0.1", 2525, timeout=10) as smtp:
    smtp.send_message(msg)
EOF"""


def test_service_runs_and_listens_on_loopback_only(host):
    service = host.service("farmhand-smtp-sink")
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://127.0.0.1:2525").is_listening
    assert not host.socket("tcp://0.0.0.0:2525").is_listening


def test_a_mail_sent_lands_in_the_maildir(host):
    host.check_output(SEND.format(subject="farmhand smtp sink check"))
    found = host.run("grep -rl 'Subject: farmhand smtp sink check' /var/mail/sink/new")
    assert found.rc == 0, found.stderr
    assert "the job failed" in host.file(found.stdout.split()[0]).content_string
