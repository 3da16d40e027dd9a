"""Farmhand: Heroku's workflow on plain EC2, driven by Ansible."""

__version__ = "0.1.0"
