"""The README states the facts that have an owner in the code the way the owner does."""

from __future__ import annotations

import re

from bincounter.training.hyperparameters import PARAMS
from toolkit_helpers import ROOT

README = (ROOT / "README.md").read_text()


def _row(name: str) -> list[str]:
    """The cells of the hyperparameter table's row naming ``name`` (alone or with others)."""
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and f"`{name}`" in re.findall(r"`[^`]+`", cells[0]):
            return cells
    raise AssertionError(f"README's training contract table has no row for `{name}`")


def test_every_hyperparameter_is_documented_with_the_contracts_default():
    for name, param in PARAMS.items():
        names = re.findall(r"`([^`]+)`", _row(name)[0])
        defaults = [d.strip() for d in _row(name)[1].split(",")]
        if param.default is None or param.default == "":
            continue  # described in words (e.g. "GPUs, 1 on CPU")
        shown = defaults[names.index(name)] if len(defaults) == len(names) else defaults[0]
        expected = str(param.default).lower() if isinstance(param.default, bool) else str(param.default)
        assert shown == expected, f"README says {name} defaults to {shown!r}; the contract says {expected!r}"
