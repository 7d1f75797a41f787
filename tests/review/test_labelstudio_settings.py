"""The compose image's Label Studio settings are a copy of devtools.label_studio's (a
Dockerfile cannot import them): every fixed setting the tests' server starts with, the
calls home switched off included, is the image's too."""

from __future__ import annotations

import shlex
from pathlib import Path

from devtools.label_studio import MIN_TOKEN, environment

DOCKERFILE = Path(__file__).resolve().parents[2] / "labelstudio-image" / "Dockerfile"
# set per start, not fixed: where the data and photos live, the admin's secrets
PER_START = {"LABEL_STUDIO_BASE_DATA_DIR", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN",
             "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"}


def image_env() -> dict[str, str]:
    """The ENV instruction's KEY=VALUE pairs (continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith("ENV ")]
    return dict(pair.split("=", 1) for pair in shlex.split(line[len("ENV "):]))


def test_the_images_label_studio_has_the_fixed_settings_of_the_tests_server():
    ours = environment(Path("/data"), "token", Path("/photos"), "password")
    fixed = {k: v for k, v in ours.items() if k not in PER_START}
    image = image_env()
    assert {k: image.get(k) for k in fixed} == fixed
    assert image["SENTRY_DSN"] == "" and image["COLLECT_ANALYTICS"] == "false"  # no calls home


def test_the_image_refuses_a_token_shorter_than_the_tests_server_does_and_has_no_default_password():
    """The start command's token check is MIN_TOKEN long (a Dockerfile cannot import it), and no
    password is baked into the image or compose: unset, it is random at each start."""
    cmd = " ".join(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD "))
    assert f"${{#LABEL_STUDIO_USER_TOKEN}} -ge {MIN_TOKEN} ]" in cmd
    assert "LABEL_STUDIO_PASSWORD" not in image_env()
    assert 'LABEL_STUDIO_PASSWORD:-$(python -c \'import secrets' in cmd
    compose = (DOCKERFILE.parents[1] / "docker-compose.yml").read_text()
    [line] = [line for line in compose.splitlines() if "LABEL_STUDIO_PASSWORD:" in line]
    assert "${LABEL_STUDIO_PASSWORD:-}" in line
