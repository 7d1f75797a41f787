"""The account and region the moto-backed tests pretend to be in (root ``aws`` fixture), and
what that fixture recorded. Imported by name: ``from conftest import`` would find whichever
conftest.py pytest loaded last."""

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/bincounter-sagemaker"


def ops(sess) -> list[str]:
    """``service:Operation`` of every request the ``aws`` fixture's session sent, in order."""
    return [f"{service}:{op}" for service, op, _ in sess.api_calls]
