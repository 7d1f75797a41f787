"""The account and region the moto-backed tests pretend to be in (root ``aws`` fixture), and
what a session sent (``record``, which that fixture uses). Imported by name: ``from conftest import`` would find whichever
conftest.py pytest loaded last."""

import boto3

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/bincounter-sagemaker"


def ops(sess) -> list[str]:
    """``service:Operation`` of every request the ``aws`` fixture's session sent, in order."""
    return [f"{service}:{op}" for service, op, _ in sess.api_calls]


def record(sess: boto3.Session) -> boto3.Session:
    """``sess`` with ``api_calls``: (service, Operation, params) of every request it sends.
    botocore validates every request's parameters before it is sent; 'before-call' fires after
    that validation passed, just before sending, so a request it rejects is never recorded."""
    calls: list[tuple[str, str, dict]] = []

    def stash(params, context, **_):
        context["api_params"] = dict(params)

    def keep(model, context, **_):
        calls.append((model.service_model.service_name, model.name, context.get("api_params", {})))

    sess.events.register("before-parameter-build.*.*", stash)
    sess.events.register("before-call.*.*", keep)
    sess.api_calls = calls
    return sess
