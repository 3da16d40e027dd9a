"""The local farm's S3 over TLS: nginx before moto, on the farm's Podman network.

pgBackRest speaks only TLS to S3, and the farm's containers cannot reach the controller's
127.0.0.1 where moto listens. `farm local up` runs an nginx of its own (Debian's package, not the
system's nginx service: its config, pid, logs and temp files live in the farm's `s3/` directory)
listening on the farm network's gateway address (this machine, as the containers see it) with a
certificate made for that address and signed by a CA made for the farm, and proxying every
request to moto on 127.0.0.1, unbuffered and with the client's Host header (the one pgBackRest
signed). The db hosts trust the CA (pgBackRest's repo1-storage-ca-file). Everything stays on this
machine.

    python -m farmhand.core.local.s3front start DIR ADDRESS MOTO_PORT   (prints ADDRESS:PORT)
    python -m farmhand.core.local.s3front stop DIR
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from farmhand.core.errors import FarmError
from farmhand.core.local.process import running_pid, terminate

UPSTREAM_HOST = "127.0.0.1"
CERT_DAYS = 825
NGINX = "nginx"

# nginx's config for one farm: TLS on the gateway address, everything passed to moto as it came.
# S3 objects go through unbuffered and unlimited in size; nothing is logged but errors.
NGINX_CONF = """\
# Written by farmhand.core.local.s3front: the local farm's S3 (moto) over TLS. Not the system's nginx.
daemon on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen {address}:{port} ssl;
        ssl_certificate {dir}/server.pem;
        ssl_certificate_key {dir}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 300s;
        proxy_send_timeout 300s;
        # pgBackRest signs the Host header it sent (the gateway address and port): keep it.
        proxy_set_header Host $http_host;
        proxy_set_header Connection "";
        location / {{
            proxy_pass http://{upstream_host}:{upstream_port};
        }}
    }}
}}
"""


def _name(common_name: str) -> object:
    from cryptography.x509 import Name, NameAttribute
    from cryptography.x509.oid import NameOID

    return Name([NameAttribute(NameOID.COMMON_NAME, common_name)])


def ensure_certificate(directory: Path, address: str) -> None:
    """A CA for the farm (ca.pem) and a certificate for ADDRESS signed by it (server.pem/.key).

    Made again when the address changes.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    stamp = directory / "address"
    if stamp.is_file() and stamp.read_text().strip() == address and (directory / "server.pem").is_file():
        return
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"Farmhand local S3 CA ({directory.parent.name})")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    # pgBackRest (2.45) matches the host it connects to against DNS names only, other clients
    # against IP address entries: the address goes in as both.
    names = [x509.IPAddress(ipaddress.ip_address(address)), x509.DNSName(address)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(address))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_file = directory / "server.key"
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    stamp.write_text(address + "\n")


class S3Front:
    """The TLS front (nginx) of one local farm; its certificate, config, pid and port live in DIRECTORY."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @property
    def pidfile(self) -> Path:
        return self.dir / "nginx.pid"

    @property
    def conf_file(self) -> Path:
        return self.dir / "nginx.conf"

    @property
    def endpoint_file(self) -> Path:
        """`ADDRESS:PORT` where the farm's hosts reach S3 (the db play reads it)."""
        return self.dir / "endpoint"

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def upstream_file(self) -> Path:
        return self.dir / "upstream"

    def pid(self) -> int | None:
        """nginx's master process, if it runs."""
        return running_pid(self.pidfile)

    def healthy(self, address: str, upstream_port: int | None = None) -> bool:
        """nginx runs, passes on to UPSTREAM_PORT and accepts TLS at ADDRESS."""
        if self.pid() is None or not self.endpoint_file.is_file():
            return False
        if upstream_port is not None and (
            not self.upstream_file.is_file() or self.upstream_file.read_text().strip() != str(upstream_port)
        ):
            return False
        host, _, port = self.endpoint_file.read_text().strip().rpartition(":")
        if host != address:
            return False
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with (
                socket.create_connection((host, int(port)), timeout=5) as sock,
                context.wrap_socket(sock, server_hostname=host),
            ):
                return True
        except (OSError, ssl.SSLError):
            return False

    def ensure(self, address: str, upstream_port: int, timeout: float = 30.0) -> str:
        """Make the certificate and start nginx unless it runs as wanted; return `ADDRESS:PORT`."""
        ensure_certificate(self.dir, address)
        if self.healthy(address, upstream_port):
            return self.endpoint_file.read_text().strip()
        self.stop()
        nginx = shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin:/sbin")
        if nginx is None:
            raise FarmError("the local farm's S3 front needs nginx: apt-get install nginx (make deps)")
        with socket.socket() as sock:
            sock.bind((address, 0))
            port = int(sock.getsockname()[1])
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.conf_file.write_text(
            NGINX_CONF.format(
                dir=self.dir,
                address=address,
                port=port,
                upstream_host=UPSTREAM_HOST,
                upstream_port=upstream_port,
            )
        )
        # -e: nginx opens its error log before it reads the config (else /var/log/nginx/error.log).
        error_log = str(self.dir / "nginx-error.log")
        argv = [nginx, "-c", str(self.conf_file), "-p", str(self.dir), "-e", error_log]
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise FarmError(f"the local S3 TLS front (nginx) did not start: {why}")
        self.endpoint_file.write_text(f"{address}:{port}\n")
        self.upstream_file.write_text(f"{upstream_port}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy(address):
                return f"{address}:{port}"
            time.sleep(0.2)
        raise FarmError(f"the local S3 TLS front did not answer at {address}:{port} within {timeout:.0f}s")

    def stop(self) -> None:
        """Stop nginx (its master waits for its workers), forget the endpoint."""
        terminate(self.pidfile)
        self.endpoint_file.unlink(missing_ok=True)
        self.upstream_file.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """start DIR ADDRESS MOTO_PORT | stop DIR."""
    command, directory = argv[0], Path(argv[1])
    try:
        if command == "start":
            print(S3Front(directory).ensure(argv[2], int(argv[3])))
        elif command == "stop":
            S3Front(directory).stop()
        else:
            print(f"unknown command {command!r}", file=sys.stderr)
            return 2
    except FarmError as exc:
        print(f"s3front: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
