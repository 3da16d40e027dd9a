"""The local farm: Podman containers running systemd play EC2 hosts, moto plays the AWS API."""
