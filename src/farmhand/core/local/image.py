"""The local farm's machine image: Debian bookworm by debootstrap, imported into Podman once.

It is what Debian's EC2 AMI gives a host: systemd as PID 1, sshd, python3, sudo, and the login
user `admin` with passwordless sudo. Each container gets its own machine id (the image's
/etc/machine-id is empty) and its own SSH host keys (generated when sshd first starts).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from farmhand.core.errors import FarmError
from farmhand.core.local.podman import exists, podman, require

IMAGE = "localhost/farmhand/bookworm"
SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "iproute2",
    "iputils-ping",
    "ca-certificates",
    "procps",
    "less",
    "locales",
)
LOGIN_USER = "admin"
# Bump when the recipe below changes: the tag is a hash of everything that shapes the image.
RECIPE_VERSION = "3"

SSH_HOST_KEYS_DROPIN = """\
# Farmhand: the image ships no host keys; each host makes its own on first boot (as cloud-init does).
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""


def apt_sources() -> list[Path]:
    """The host's Debian apt source files (what debootstrap and the image use)."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    found = []
    for path in candidates:
        if path.suffix not in {".list", ".sources"} or not path.is_file():
            continue
        if re.search(r"^\s*(deb\s|Types:\s*deb)", path.read_text(encoding="utf-8"), re.M):
            found.append(path)
    return found


def mirror() -> str:
    """The Debian mirror the host is configured with."""
    for path in apt_sources():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+)", text, re.M):
            uri = match.group(1)
            if "security" not in uri and "debian" in uri:
                return uri.rstrip("/")
    raise FarmError("no Debian mirror in /etc/apt/sources.list*: configure apt first")


def image_tag() -> str:
    recipe = "|".join([RECIPE_VERSION, SUITE, mirror(), ",".join(PACKAGES), SSH_HOST_KEYS_DROPIN])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def image_ref() -> str:
    return f"{IMAGE}:{image_tag()}"


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise FarmError(f"{what} failed: {' / '.join(tail)}")


def customise(rootfs: Path) -> None:
    """Turn a debootstrapped tree into an EC2-like host image."""
    # Each container gets its own machine id: systemd fills an empty /etc/machine-id at boot.
    (rootfs / "etc/machine-id").write_text("")
    dbus_id = rootfs / "var/lib/dbus/machine-id"
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    # No shared SSH host keys: generated per host on first start of sshd.
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    dropin = rootfs / "etc/systemd/system/ssh.service.d/farmhand-host-keys.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(SSH_HOST_KEYS_DROPIN)
    # The login user of Debian's cloud images, with passwordless sudo.
    _run(
        [
            "chroot",
            str(rootfs),
            "useradd",
            "--create-home",
            "--shell",
            "/bin/bash",
            "--groups",
            "sudo",
            LOGIN_USER,
        ],
        "adding the admin user",
    )
    sudoers = rootfs / "etc/sudoers.d/90-cloud-init-users"
    sudoers.write_text(
        f"# Created as cloud-init does on Debian's EC2 images\n{LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n"
    )
    sudoers.chmod(0o440)
    # apt inside the hosts uses the same sources as this machine.
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    for source in apt_sources():
        target = rootfs / "etc/apt" / source.relative_to("/etc/apt")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    # Units that make no sense in a container and only slow boot or fail.
    for unit in ("systemd-networkd-wait-online.service", "getty@tty1.service"):
        link = rootfs / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (rootfs / "etc/hostname").write_text("localhost\n")
    _run(["chroot", str(rootfs), "apt-get", "clean"], "cleaning the apt cache")


def build(work_dir: Path, echo: bool = True) -> str:
    """debootstrap, customise and import the image; returns its reference."""
    require("debootstrap")
    ref = image_ref()
    rootfs = work_dir / f"rootfs-{image_tag()}"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    rootfs.mkdir(parents=True)
    try:
        if echo:
            print(f"-----> Building {ref} with debootstrap from {mirror()} (once; cached afterwards)")
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                mirror(),
            ],
            "debootstrap",
        )
        customise(rootfs)
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE
        )
        proc = subprocess.run(
            [
                require("podman"),
                "import",
                "--change",
                'CMD ["/sbin/init"]',
                "--change",
                "STOPSIGNAL SIGRTMIN+3",
                "-",
                ref,
            ],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if proc.returncode != 0 or tar.returncode != 0:
            raise FarmError(f"podman import failed: {proc.stderr.strip()}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return ref


def ensure_image(work_dir: Path, echo: bool = True) -> str:
    """The image reference, building it first if this recipe has not been built yet."""
    ref = image_ref()
    if not exists("image", ref):
        build(work_dir, echo=echo)
    podman("tag", ref, f"{IMAGE}:latest")  # molecule scenarios use :latest
    return ref
