"""How many examples a Hypothesis property draws: the full count under CI (CI=true, as
CI runs .ci/run), a tenth of it (at least 50) on a developer's machine, where make test-fast
is the inner loop. HYPOTHESIS_FULL=1 asks for the full count anywhere."""

from __future__ import annotations

import os

FULL = os.environ.get("CI") == "true" or os.environ.get("HYPOTHESIS_FULL") == "1"


def examples(n: int) -> int:
    return n if FULL else max(50, n // 10)
