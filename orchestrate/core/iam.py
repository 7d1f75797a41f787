"""The roles orchestrate makes: a policy template's ``{{Placeholder}}`` names filled in, and a
role under ``ROLE_PATH`` with the stack's tags (which ``teardown`` goes by) holding that one
policy. The Lambda front door and the monitor's schedule both make theirs here."""

from __future__ import annotations

import json
import logging
import re

from orchestrate.core.aws import ROLE_PATH, tags
from orchestrate.core.config import ConfigError

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def fill(template: str, values: dict[str, str]) -> dict:
    """A policy template with every ``{{Placeholder}}`` filled; fails naming any left unknown."""
    text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    left = sorted(set(_PLACEHOLDER.findall(text)))
    if left:
        raise ConfigError(f"IAM policy template has placeholders orchestrate cannot fill: {left}")
    return json.loads(text)


def ensure_role(iam, name: str, service: str, policy_name: str, policy: dict, stack: str, description: str) -> str:
    """Create (or refresh the one policy of) a role ``service`` assumes; returns its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": service}}]}
    try:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        # The path lets teardown list only our roles; the tags decide.
        arn = iam.create_role(RoleName=name, Path=ROLE_PATH, AssumeRolePolicyDocument=json.dumps(trust),
                              Description=description, Tags=tags(stack))["Role"]["Arn"]
        iam.get_waiter("role_exists").wait(RoleName=name)
        log.info("created role %s", arn)
    iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    return arn
