"""A model onto the endpoint, and the monitor onto the same model: what ``deploy`` and
``promote`` both do, in this order.

The endpoint first: while it updates, the monitor keeps judging against the model still
served. Then the schedule's runs follow the new model (its job role already reads every model
of the stack, so no IAM write is needed). If the second step fails the endpoint serves the new
model while the monitor judges against the old one:
the error says so, ``monitor --status`` shows it as stale, and running the command again (or
``monitor --schedule``, which reads the endpoint's model) repairs it; nothing else is left
half done.
"""

from __future__ import annotations

from typing import Callable

from botocore.exceptions import BotoCoreError, ClientError

from orchestrate.core.config import Config, ConfigError
from orchestrate.endpoint.deploy import Deployment, deploy
from orchestrate.monitor import schedule


class MonitorBehindError(RuntimeError):
    """The endpoint was updated; the monitor's schedule could not follow it."""


def release(sm, autoscaling, scheduler, cfg: Config, image: str, model_data: str,
            echo: Callable[[str], None] = lambda s: None, poll_delay: float = 15.0) -> tuple[Deployment, str]:
    """(the deployment, the model the monitor judged against before; "" without a schedule)."""
    done = deploy(sm, autoscaling, cfg, image, model_data, echo=echo, poll_delay=poll_delay)
    try:
        before = schedule.follow(scheduler, cfg, model_data)
    except (ClientError, BotoCoreError, ConfigError) as exc:
        raise MonitorBehindError(
            f"endpoint {done.endpoint} now serves {model_data}, but the monitor's schedule could not follow it "
            f"({exc}): its runs still judge against the model before. Run this command again, or `orchestrate "
            "monitor --schedule EXPR` (it reads the endpoint's model)") from exc
    return done, before
