"""The documents state the facts that have an owner in the code the way the owner does,
and point only at what is in the repo."""

from __future__ import annotations

import re

import pytest

from bincounter.serving import settings
from bincounter.serving.contract import MAX_BODY_BYTES, MB
from bincounter.training.hyperparameters import PARAMS
from toolkit_helpers import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md",
        ROOT / "lambda" / "README.md"]
README_MAX_LINES = 200


def _rows(path) -> dict[str, list[str]]:
    """Table rows of a document by the backticked names in their first cell."""
    rows = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2:
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows.setdefault(name, cells)
    return rows


def test_every_hyperparameter_is_documented_with_the_contracts_default():
    rows = _rows(ROOT / "docs" / "training.md")
    for name, param in PARAMS.items():
        assert name in rows, f"docs/training.md's training contract table has no row for `{name}`"
        names = re.findall(r"`([^`]+)`", rows[name][0])
        defaults = [d.strip() for d in rows[name][1].split(",")]
        if param.default is None or param.default == "":
            continue  # described in words (e.g. "GPUs, 1 on CPU")
        shown = defaults[names.index(name)] if len(defaults) == len(names) else defaults[0]
        expected = str(param.default).lower() if isinstance(param.default, bool) else str(param.default)
        assert shown == expected, f"docs say {name} defaults to {shown!r}; the contract says {expected!r}"


def test_the_serving_settings_table_names_every_knob_with_the_codes_default():
    read = set(re.findall(r'"((?:SAGEMAKER|MODEL_SERVER|SM|BINCOUNTER)_[A-Z_]+)"',
                          (ROOT / "src" / "bincounter" / "serving" / "settings.py").read_text()))
    rows = _rows(ROOT / "docs" / "serving.md")
    documented = {name for name in rows if re.fullmatch(r"(SAGEMAKER|MODEL_SERVER|SM|BINCOUNTER)_[A-Z_]+", name)}
    unread = {"SAGEMAKER_BATCH_STRATEGY", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"}  # documented as read by nobody
    assert documented - unread == read
    d = settings.ServeSettings()
    defaults = {"SAGEMAKER_BIND_TO_PORT": str(d.port), "MODEL_SERVER_HOST": d.host, "SM_MODEL_DIR": str(d.model_dir),
                "MODEL_SERVER_THREADS": f"{d.threads} ({settings.BATCH_THREADS} in batch)",
                "MODEL_SERVER_INTRA_OP_THREADS": str(d.intra_op_threads),
                "MODEL_SERVER_TIMEOUT": f"{d.timeout} ({settings.BATCH_TIMEOUT_S} in batch)",
                "MODEL_SERVER_GRACEFUL_TIMEOUT": str(d.graceful_timeout),
                "MODEL_SERVER_READ_DEADLINE": str(d.read_deadline), "SAGEMAKER_BATCH": str(d.batch).lower(),
                "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(MAX_BODY_BYTES // MB)}
    for name, default in defaults.items():
        assert rows[name][1] == default, f"docs/serving.md says {name} defaults to {rows[name][1]!r}; code: {default!r}"


def test_the_readme_is_a_front_door_of_at_most_200_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MAX_LINES


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repo_and_nothing_points_outside(doc):
    text = doc.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "#")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve()
        assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{doc.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            slugs = {re.sub(r"[^\w\- ]", "", h.strip("# ").lower()).replace(" ", "-")
                     for h in resolved.read_text().splitlines() if h.startswith("#")}
            assert anchor in slugs, f"{doc.name}: {target} names no heading of {path}"
    for outside in ("../shared/docs", "PLATFORM.md", "the issue"):
        assert outside not in text, f"{doc.name} points outside the repo: {outside!r}"
