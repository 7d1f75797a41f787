"""Which image a command runs: the one owner of image names, in the cloud and locally."""

from __future__ import annotations

from orchestrate.core.config import Config, ConfigError


def image_uri(cfg: Config, ecr, which: str) -> str:
    """The cloud image: images.<which>_image, else the ECR repository's URI with the configured tag."""
    explicit = getattr(cfg.images, f"{which}_image")
    if explicit:
        return explicit
    repo = getattr(cfg.images, f"{which}_repo")
    try:
        uri = ecr.describe_repositories(repositoryNames=[repo])["repositories"][0]["repositoryUri"]
    except ecr.exceptions.RepositoryNotFoundException as exc:
        raise ConfigError(f"images.{which}_image is not set and ECR has no repository {repo!r} "
                          "(push the images first: make push)") from exc
    return f"{uri}:{cfg.images.tag}"


def local_image(cfg: Config, which: str) -> str:
    """The image local mode runs: images.<which>_image, else REPO:TAG as `make images` tags it."""
    return getattr(cfg.images, f"{which}_image") or f"{getattr(cfg.images, f'{which}_repo')}:{cfg.images.tag}"
