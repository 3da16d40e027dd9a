"""Errors a user can cause or fix: printed as one line on stderr, exit code 2."""


class FarmError(Exception):
    """A problem the user can act on (bad input, missing credentials, unknown farm...)."""

    exit_code = 2


class RunFailed(FarmError):
    """A run on the farm failed (a playbook, a host that does not answer): one line, exit code 1."""

    exit_code = 1
