"""What an endpoint serves and where it captures: read by deploy, the monitor and promote, so
it lives below all three concerns."""

from __future__ import annotations

from orchestrate.core.config import Config


def serving_model_data(sm, endpoint: str) -> str:
    """The model.tar.gz the endpoint serves now."""
    config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    variant = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    return sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["ModelDataUrl"]


def endpoint_exists(sm, endpoint: str) -> bool:
    return any(e["EndpointName"] == endpoint for e in sm.list_endpoints(NameContains=endpoint)["Endpoints"])


def capture_uri(cfg: Config) -> str:
    """Where the endpoint's captures go: SageMaker adds ENDPOINT/VARIANT/yyyy/mm/dd/hh/."""
    return f"{cfg.s3_base}/{cfg.monitor.capture_prefix.strip('/')}"
