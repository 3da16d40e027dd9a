"""What the commands do: the farm, its hosts, releases, config, databases, Ansible runs."""
