"""``orchestrate policy NAME``: a shipped IAM policy filled for the stack (attach it yourself)."""

from __future__ import annotations

import json

from orchestrate.access import policies
from orchestrate.core import aws
from orchestrate.core.config import Config


def cmd_policy(args, cfg: Config, sess) -> int:
    account = aws.account_id(aws.client(sess, "sts"))
    print(json.dumps(policies.filled(args.name, cfg, account), indent=1))
    return 0
