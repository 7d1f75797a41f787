"""Refuse a training job whose image lacks the ImageNet weights its hyperparameters need.

``pretrained=true`` (the training contract's default) loads the arch's ImageNet
weights from the image's TORCH_HOME and never downloads them, so a job on an
image built without them starts billing and then fails with
``PretrainedWeightsUnavailable``. The training image says what it carries in
two labels (training-image/Dockerfile)::

    bincounter.pretrained-weights = 1 | 0
    bincounter.pretrained-archs   = resnet50 resnet18   (baked when weights = 1)

``orchestrate train`` / ``tune`` read them from the image's config as pushed to
ECR (BatchGetImage for the manifest, GetDownloadUrlForLayer for the config
blob: the very bytes SageMaker will pull, whichever machine pushed them), and
``--local`` from the local engine (``docker image inspect``). No label, no job:
an image that cannot say what it carries is refused like one that lacks it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import urllib.request
from typing import Callable

from bincounter.training.hyperparameters import HyperparameterError, get_args_parser
from orchestrate.core.config import ConfigError

WEIGHTS_LABEL = "bincounter.pretrained-weights"
ARCHS_LABEL = "bincounter.pretrained-archs"
MANIFEST_TYPES = ["application/vnd.docker.distribution.manifest.v2+json",
                  "application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.list.v2+json",
                  "application/vnd.oci.image.index.v1+json"]


class ImageLacksWeights(ConfigError):
    """The job's hyperparameters need ImageNet weights its image does not (say it) carry."""


def needed_arch(hyperparameters: dict[str, str]) -> str | None:
    """The arch whose ImageNet weights the job needs (None: trains from scratch), resolved
    with the training contract's own parser and defaults; a value of the wrong type is
    refused too (names the parser does not know are left to the container to refuse)."""
    argv = [a for k, v in hyperparameters.items() for a in (f"--{k}", str(v))]
    try:
        hp, _ = get_args_parser().parse_known_args(argv)
    except HyperparameterError as exc:
        raise ConfigError(f"hyperparameters {hyperparameters}: {exc}") from None
    return hp.arch if hp.pretrained else None


def carried_archs(labels: dict[str, str] | None) -> set[str] | None:
    """The archs whose weights the image carries; None when it does not say."""
    labels = labels or {}
    if WEIGHTS_LABEL not in labels:
        return None
    return set(labels.get(ARCHS_LABEL, "").split()) if labels[WEIGHTS_LABEL] == "1" else set()


def require_weights(image: str, labels: dict[str, str] | None, hyperparameters: dict[str, str],
                    rebuild: str = "make images && make push", before: str = "anything bills") -> None:
    """Raise ImageLacksWeights, saying how to fix it, unless the image carries what the job needs."""
    arch = needed_arch(hyperparameters)
    carried = carried_archs(labels)
    if arch is None or (carried is not None and arch in carried):
        return
    what = (f"has no {WEIGHTS_LABEL} label, so it cannot say whether it carries them" if carried is None
            else f"carries ImageNet weights for {', '.join(sorted(carried)) or 'no arch'} "
                 f"({WEIGHTS_LABEL}={labels[WEIGHTS_LABEL]})")
    given = "given" if "pretrained" in hyperparameters else "the default"
    raise ImageLacksWeights(
        f"refused before {before}: the job trains {arch} with pretrained=true ({given}), which "
        f"loads {arch}'s ImageNet weights from the image, but {image} {what}. Either rebuild the image "
        f"with them on a machine with network ({rebuild}; PRETRAINED_WEIGHTS=1 is the default) or "
        f"train from scratch (--hp pretrained=false)")


def parse_ecr_uri(uri: str) -> tuple[str, str, dict[str, str]]:
    """``ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]`` -> (registry id, repo, image id)."""
    host, _, rest = uri.partition("/")
    if ".dkr.ecr." not in host or not rest:
        raise ConfigError(f"{uri} is not an ECR image URI (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG)")
    if "@" in rest:
        repo, _, digest = rest.partition("@")
        return host.split(".")[0], repo, {"imageDigest": digest}
    repo, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    return host.split(".")[0], repo, {"imageTag": tag}


def ecr_image_labels(ecr, uri: str, fetch: Callable[[str], bytes] | None = None) -> dict[str, str]:
    """The labels in the config of the image ``uri`` as stored in ECR."""
    fetch = fetch or (lambda url: urllib.request.urlopen(url, timeout=60).read())
    registry, repo, image_id = parse_ecr_uri(uri)

    def manifest(image_id: dict) -> dict:
        found = ecr.batch_get_image(registryId=registry, repositoryName=repo, imageIds=[image_id],
                                    acceptedMediaTypes=MANIFEST_TYPES)
        if not found["images"]:
            reason = (found.get("failures") or [{}])[0].get("failureReason", "not found")
            raise ConfigError(f"{uri}: {reason} in ECR (push it first: make push)")
        return json.loads(found["images"][0]["imageManifest"])

    doc = manifest(image_id)
    if "manifests" in doc:  # a multi-platform index: SageMaker runs linux/amd64
        entry = next((m for m in doc["manifests"] if m.get("platform", {}).get("architecture") == "amd64"),
                     None)
        if entry is None:
            raise ConfigError(f"{uri} has no linux/amd64 image")
        doc = manifest({"imageDigest": entry["digest"]})
    url = ecr.get_download_url_for_layer(registryId=registry, repositoryName=repo,
                                         layerDigest=doc["config"]["digest"])["downloadUrl"]
    return json.loads(fetch(url)).get("config", {}).get("Labels") or {}


def local_image_labels(image: str) -> dict[str, str]:
    """The labels of ``image`` in the local Docker engine."""
    proc = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ConfigError(f"docker image inspect {shlex.quote(image)}: {proc.stderr.strip()[:300]}")
    return json.loads(proc.stdout) or {}
