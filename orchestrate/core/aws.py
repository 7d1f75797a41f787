"""The one place orchestrate makes boto3 sessions and clients.

Commands receive clients from here (or from a test) as arguments. Retries are
botocore's (standard mode); endpoints come from botocore's own
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` settings, so pointing
orchestrate at an emulator is configuration, not code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import boto3
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig

from orchestrate.core.store import split_s3

MANAGED_BY_KEY = "bincounter:managed-by"
MANAGED_BY_VALUE = "orchestrate"
STACK_KEY = "bincounter:stack"
# IAM roles orchestrate creates live under this path, so teardown lists only these.
ROLE_PATH = "/bincounter/"

# 32 connections: data transfers run up to data.workers requests at once.
RETRIES = BotoConfig(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=32)
# The public ABID bucket allows anonymous reads only; signing would need credentials.
UNSIGNED_CONFIG = BotoConfig(signature_version=UNSIGNED, retries={"max_attempts": 10, "mode": "standard"},
                             max_pool_connections=32)


def tags(stack: str) -> list[dict[str, str]]:
    """The tags on everything orchestrate creates; teardown deletes exactly these."""
    return [{"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}, {"Key": STACK_KEY, "Value": stack}]


def is_ours(tag_list: list[dict[str, str]] | dict[str, str], stack: str) -> bool:
    """True for a resource tagged by orchestrate for ``stack`` (API list or Lambda's dict form)."""
    found = tag_list if isinstance(tag_list, dict) else {t["Key"]: t["Value"] for t in tag_list}
    return found.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE and found.get(STACK_KEY) == stack


def session(region: str) -> boto3.Session:
    return boto3.Session(region_name=region)


def client(sess: boto3.Session, service: str) -> Any:
    return sess.client(service, config=RETRIES)


def unsigned_s3(sess: boto3.Session, region: str, endpoint_url: str = "") -> Any:
    """Anonymous S3 in the source bucket's region; ``endpoint_url`` beats AWS_ENDPOINT_URL*."""
    return sess.client("s3", region_name=region, endpoint_url=endpoint_url or None, config=UNSIGNED_CONFIG)


class S3Clients:
    """The one owner of which S3 client reads a bucket: the unsigned one for the public source
    bucket (no credentials needed there, and it lives in its own region), the signed one for
    any other. Each is made on first use: making one looks for credentials (IMDS included),
    which a command on local folders never needs."""

    def __init__(self, signed: Callable[[], Any], public: Callable[[], Any], source_bucket: str):
        self._make_signed, self._make_public, self.source_bucket = signed, public, source_bucket

    @classmethod
    def of_session(cls, sess: boto3.Session, source_bucket: str, source_region: str,
                   source_endpoint_url: str = "") -> "S3Clients":
        return cls(lambda: client(sess, "s3"), lambda: unsigned_s3(sess, source_region, source_endpoint_url),
                   source_bucket)

    @cached_property
    def signed(self) -> Any:
        return self._make_signed()

    @cached_property
    def public(self) -> Any:
        return self._make_public()

    def for_bucket(self, bucket: str) -> Any:
        return self.public if bucket == self.source_bucket else self.signed

    def for_uri(self, uri: str) -> Any:
        """The client that reads ``s3://bucket/...``."""
        return self.for_bucket(split_s3(uri)[0])


def unique_name(stack: str, kind: str, limit: int = 63) -> str:
    """``STACK-KIND-YYMMDD-HHMMSS-mmm`` (UTC, sortable) cut to ``limit``, the stack shortened first."""
    now = time.time()
    stamp = time.strftime("%y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    room = limit - len(kind) - len(stamp) - 2
    return f"{stack[:max(room, 1)]}-{kind}-{stamp}"


def account_id(sts) -> str:
    return sts.get_caller_identity()["Account"]


@dataclass
class Poll:
    """Waits for a status with one progress line; not a retry: every reply is final."""

    describe: Callable[[], str]
    done: set[str]
    failed: set[str]
    what: str
    timeout: float = 1800.0
    delay: float = 15.0

    def run(self, echo: Callable[[str], None]) -> str:
        start = time.monotonic()
        while True:
            status = self.describe()
            elapsed = time.monotonic() - start
            echo(f"\r{self.what}: {status} ({elapsed:.0f} s)")
            if status in self.done or status in self.failed:
                echo("\n")
                return status
            if elapsed > self.timeout:
                echo("\n")
                raise TimeoutError(f"{self.what} still {status} after {elapsed:.0f} s")
            time.sleep(self.delay)
