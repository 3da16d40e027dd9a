"""boto3 access with the standard credential chain, and AWS failures as clear messages."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions as bex
import botocore.session
from botocore.config import Config
from botocore.credentials import EnvProvider

from farmhand.core.errors import FarmError

# Fail fast on an unreachable endpoint instead of retrying for minutes.
_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})

_AUTH_CODES = {
    "AuthFailure",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
}

LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


def _reached_for(url: str) -> str:
    """What a connection failure names: AWS's own endpoints as AWS, any other (moto) by its URL."""
    host = urlsplit(url).hostname or ""
    return f"AWS ({url})" if host.endswith(".amazonaws.com") else url


@contextmanager
def aws_errors(endpoint: str | None = None) -> Iterator[None]:
    """Turn boto3's exceptions into one-line FarmErrors (ENDPOINT: the configured endpoint URL, if any)."""
    try:
        yield
    except bex.NoCredentialsError:
        raise FarmError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            '(for a local farm: eval "$(farm local env -f FARM)")'
        ) from None
    except bex.ProfileNotFound as exc:
        raise FarmError(f"AWS profile {exc.kwargs.get('profile')!r} is not configured") from None
    except bex.PartialCredentialsError as exc:
        raise FarmError(f"incomplete AWS credentials: {exc.kwargs.get('cred_var')} is missing") from None
    except (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError) as exc:
        raise FarmError(f"cannot reach {_reached_for(str(exc.kwargs.get('endpoint_url', exc)))}") from None
    except bex.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in _AUTH_CODES:
            raise FarmError(f"AWS rejected the credentials ({code}): check AWS_PROFILE or the keys") from None
        raise FarmError(f"AWS error {code}: {message}") from None
    except ValueError as exc:  # botocore raises ValueError for a malformed endpoint URL
        if any(word in str(exc).lower() for word in ("endpoint", "url", "port")):
            raise FarmError(f"invalid AWS endpoint {endpoint or ''!r}: {exc}") from None
        raise
    except bex.BotoCoreError as exc:
        raise FarmError(f"AWS error: {exc}") from None


# The settings a farm's environment decides (farmhand.core.target.environment_for: a local farm drops the
# shell's profile and tokens and brings moto's endpoint and keys), read from that environment rather
# than from this process's. Other settings (AWS_CA_BUNDLE, container or web-identity credentials)
# stay botocore's own reading of the process environment, which no farm changes.
_SETTINGS_FROM_ENV = {
    "config_file": "AWS_CONFIG_FILE",
    "credentials_file": "AWS_SHARED_CREDENTIALS_FILE",
    "ec2_metadata_disabled": "AWS_EC2_METADATA_DISABLED",
}


def session(region: str, env: Mapping[str, str]) -> boto3.session.Session:
    """A boto3 session for REGION whose profile, keys and files come from ENV, not os.environ.

    botocore reads its settings from the process environment; the CLI targets a farm through an
    environment it passes explicitly (to ansible-playbook, ssh and here) and leaves its own alone.
    """
    core = botocore.session.Session()
    store = core.get_component("config_store")
    # Set even when ENV has none: a profile in this process's environment must not come back.
    store.set_config_variable("profile", env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE") or None)
    for logical, name in _SETTINGS_FROM_ENV.items():
        if env.get(name):
            store.set_config_variable(logical, env[name])
    # The credential chain as botocore builds it, its environment step reading ENV (keys, token,
    # a half-set pair reported as such); profiles, SSO and the instance role follow as usual.
    resolver = core.get_component("credential_provider")
    resolver.providers = [
        EnvProvider(environ=dict(env)) if p.METHOD == EnvProvider.METHOD else p for p in resolver.providers
    ]
    return boto3.session.Session(botocore_session=core, region_name=region)


def client(service: str, region: str, env: Mapping[str, str]) -> Any:
    """A boto3 client for ENV (a farm's environment): its credential chain and AWS_ENDPOINT_URL."""
    endpoint = env.get("AWS_ENDPOINT_URL") or None
    with aws_errors(endpoint):
        if endpoint:
            urlsplit(endpoint).port  # noqa: B018 - a port out of range raises here, not at the first call
        return session(region, env).client(service, config=_CONFIG, endpoint_url=endpoint)


def _instances(ec2: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with aws_errors():
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                found.extend(reservation["Instances"])
    return found


def tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def farm_instances(ec2: Any, farm: str, states: list[str] | None = None) -> list[dict[str, Any]]:
    """Instances tagged farm=<farm> in the given states (default: all but terminated)."""
    filters = [
        {"Name": "tag:farm", "Values": [farm]},
        {"Name": "instance-state-name", "Values": states or LIVE_STATES},
    ]
    return _instances(ec2, filters)


def tagged_farms(ec2: Any) -> set[str]:
    """Farm names found in the account's `farm` tags."""
    filters = [
        {"Name": "tag-key", "Values": ["farm"]},
        {"Name": "instance-state-name", "Values": LIVE_STATES},
    ]
    return {tags(i)["farm"] for i in _instances(ec2, filters)}
