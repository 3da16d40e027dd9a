"""boto3 access with the standard credential chain, and AWS failures as clear messages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions as bex
from botocore.config import Config

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


def endpoint_label() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS"


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn boto3's exceptions into one-line FarmErrors."""
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
        raise FarmError(f"cannot reach {endpoint_label()}: {exc.kwargs.get('endpoint_url', exc)}") from None
    except bex.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in _AUTH_CODES:
            raise FarmError(f"AWS rejected the credentials ({code}): check AWS_PROFILE or the keys") from None
        raise FarmError(f"AWS error {code}: {message}") from None
    except ValueError as exc:  # botocore raises ValueError for a malformed endpoint URL
        if any(word in str(exc).lower() for word in ("endpoint", "url", "port")):
            raise FarmError(f"invalid AWS endpoint {endpoint_label()!r}: {exc}") from None
        raise
    except bex.BotoCoreError as exc:
        raise FarmError(f"AWS error: {exc}") from None


def client(service: str, region: str) -> Any:
    """A boto3 client honouring the standard chain (env, profile, instance role) and AWS_ENDPOINT_URL."""
    with aws_errors():
        return boto3.session.Session(region_name=region).client(service, config=_CONFIG)


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
