"""The roles orchestrate makes: a policy template's ``{{Placeholder}}`` names filled in, and a
role under ``ROLE_PATH`` with the stack's tags (which ``teardown`` goes by) holding that one
policy. The Lambda front door and the monitor's schedule both make theirs here.

Every trust policy names the account the service acts for (``aws:SourceAccount``) and, where
the service sets it, the resource it acts for (``aws:SourceArn``): AWS's guard against the
confused deputy, so another account's job or schedule cannot borrow the role. A role of the
same name that orchestrate did not make for this stack is never taken over.
"""

from __future__ import annotations

import json
import logging
import re

from orchestrate.core.aws import ROLE_PATH, is_ours, tags
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


def trust(service: str, account: str, source_arn: str = "") -> dict:
    """The trust policy letting ``service`` assume a role only on behalf of ``account`` (and of
    resources matching ``source_arn``, where the service sets that key)."""
    condition: dict = {"StringEquals": {"aws:SourceAccount": account}}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": service}, "Condition": condition}]}


class RoleTakenError(ConfigError):
    """A role of the name orchestrate wants exists and is not this stack's."""


def ensure_role(iam, name: str, trust_policy: dict, policy_name: str, policy: dict, stack: str,
                description: str) -> str:
    """Create (or bring up to date the trust and the one policy of) a role this stack made;
    returns its ARN. A role of that name not tagged as this stack's is refused, unchanged."""
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        # The path lets teardown list only our roles; the tags decide.
        arn = iam.create_role(RoleName=name, Path=ROLE_PATH, AssumeRolePolicyDocument=json.dumps(trust_policy),
                              Description=description, Tags=tags(stack))["Role"]["Arn"]
        iam.get_waiter("role_exists").wait(RoleName=name)
        log.info("created role %s", arn)
    else:
        arn = role["Arn"]
        if not is_ours(iam.list_role_tags(RoleName=name).get("Tags", []), stack):
            raise RoleTakenError(f"role {name} exists and was not made by orchestrate for stack {stack!r}: "
                                 "refusing to change its trust or policy (delete it, or use another stack name)")
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust_policy))
    iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    return arn
