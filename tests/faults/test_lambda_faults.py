"""bench-faults' Lambda rows at a small size: the endpoint fails a share of calls with each of
SageMaker Runtime's error shapes; the caller gets JSON 429 / 502 / 504, never 500."""

from __future__ import annotations

import pytest

from benchmarks.faults import lambda_
from devtools.local_serve import start_serve, stop
from devtools.runtime_emulator import FAULTS

pytestmark = pytest.mark.slow  # a real server


def test_every_error_shape_reaches_the_caller_as_its_json_status_never_500(random_model_dir, synthetic_bins,
                                                                           tmp_path):
    """Fails if handler.invoke let ModelError fall through to the 500 of an unexpected exception,
    or mapped a read timeout to 502."""
    image = next((synthetic_bins / "images").glob("*.jpg")).read_bytes()
    with open(tmp_path / "serve.log", "wb") as log:
        proc, url = start_serve(random_model_dir, log, MODEL_SERVER_WORKERS="2")
        try:
            rows = lambda_.endpoint_faults(url, image, calls=12, share=0.5, hang_s=2.0)
        finally:
            stop(proc)
    assert [r.fault.rsplit(" ", 1)[-1] for r in rows] == list(FAULTS)
    for row in rows:
        assert row.passed, (row.fault, row.did)
        assert row.facts["injected"] > 0
    by = {r.fault.rsplit(" ", 1)[-1]: r.facts["statuses"] for r in rows}
    assert 502 in by["model-error"] and 429 in by["not-ready"]  # neither is retried: the caller is told
