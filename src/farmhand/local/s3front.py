"""The local farm's S3 over TLS: a small TLS front before moto, on the farm's Podman network.

pgBackRest speaks only TLS to S3, and the farm's containers cannot reach the controller's
127.0.0.1 where moto listens. The front listens on the farm network's gateway address (this
machine, as the containers see it) with a certificate made for that address and signed by a CA
made for the farm, and passes the bytes on to moto on 127.0.0.1. The db hosts trust the CA
(pgBackRest's repo1-storage-ca-file). Everything stays on this machine.

    python -m farmhand.local.s3front start DIR ADDRESS MOTO_PORT   (prints ADDRESS:PORT)
    python -m farmhand.local.s3front stop DIR
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from farmhand.errors import FarmError

UPSTREAM_HOST = "127.0.0.1"
CERT_DAYS = 825


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
    """The TLS front of one local farm; its certificate, pid and port live in DIRECTORY."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @property
    def pidfile(self) -> Path:
        return self.dir / "pid"

    @property
    def endpoint_file(self) -> Path:
        """`ADDRESS:PORT` where the farm's hosts reach S3 (the db play reads it)."""
        return self.dir / "endpoint"

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    @property
    def upstream_file(self) -> Path:
        return self.dir / "upstream"

    def healthy(self, address: str, upstream_port: int | None = None) -> bool:
        """The recorded process lives, passes on to UPSTREAM_PORT and accepts TLS at ADDRESS."""
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
        """Make the certificate and start the front unless it runs; return `ADDRESS:PORT`."""
        ensure_certificate(self.dir, address)
        if self.healthy(address, upstream_port):
            return self.endpoint_file.read_text().strip()
        self.stop()
        with socket.socket() as sock:
            sock.bind((address, 0))
            port = int(sock.getsockname()[1])
        log = (self.dir / "s3front.log").open("ab")
        serve = ["serve", str(self.dir), address, str(port), str(upstream_port)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "farmhand.local.s3front", *serve],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pidfile.write_text(str(proc.pid))
        self.endpoint_file.write_text(f"{address}:{port}\n")
        self.upstream_file.write_text(f"{upstream_port}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise FarmError(f"the local S3 TLS front exited at start: see {self.dir / 's3front.log'}")
            if self.healthy(address):
                return f"{address}:{port}"
            time.sleep(0.2)
        raise FarmError(f"the local S3 TLS front did not answer at {address}:{port} within {timeout:.0f}s")

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)
        self.endpoint_file.unlink(missing_ok=True)
        self.upstream_file.unlink(missing_ok=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def _serve(directory: Path, address: str, port: int, upstream_port: int) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(UPSTREAM_HOST, upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, up_writer), _pipe(up_reader, client_writer))

    server = await asyncio.start_server(handle, address, port, ssl=context)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    """start DIR ADDRESS MOTO_PORT | stop DIR | serve DIR ADDRESS PORT MOTO_PORT (the process itself)."""
    command, directory = argv[0], Path(argv[1])
    if command == "start":
        print(S3Front(directory).ensure(argv[2], int(argv[3])))
    elif command == "stop":
        S3Front(directory).stop()
    elif command == "serve":
        asyncio.run(_serve(directory, argv[2], int(argv[3]), int(argv[4])))
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
