"""Whether a test run may pass CI: ``python -m devtools.ci_verdict REPORT.xml [REPORT.xml ...]``.

Reads pytest's JUnit reports (``make test-all JUNIT=DIR`` writes one per tier), in which
every test case carries its markers as the ``markers`` property: this module is also the
pytest plugin that adds them (``pytest_plugins`` in tests/conftest.py, or ``-p
devtools.ci_verdict``). Under CI (``CI=true``) any skipped test fails the run with its reason, unless ``ALLOWED`` names it with the reason
it may skip there: coverage cannot be lost silently (a CI that cannot reach its Docker
engine, or that lost the shared sample, must not go green). Elsewhere the skips are listed
and the run passes.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    """Record the test's markers before its fixtures run (they may skip it)."""
    item.user_properties.append(("markers", " ".join(sorted({m.name for m in item.iter_markers()}))))


# test name (the function, any parameters) -> why CI may skip it and still pass
ALLOWED = {
    "test_the_kept_int8_graph_lands_in_a_model_folder_on_another_file_system":
        "needs /dev/shm on another file system than the temporary folder; where it is the same one, "
        "no move across file systems can be made on that machine",
}


@dataclass(frozen=True)
class Skip:
    test: str
    markers: frozenset[str]
    reason: str


def read_skips(report_xml: str) -> list[Skip]:
    """Every skipped test case in a JUnit report, with its markers and the skip reason."""
    skips = []
    for case in ET.parse(report_xml).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is None:
            continue
        markers = next((p.get("value", "") for p in case.iter("property") if p.get("name") == "markers"), "")
        reason = skipped.get("message") or (skipped.text or "").strip()
        skips.append(Skip(f"{case.get('classname')}::{case.get('name')}", frozenset(markers.split()), reason))
    return skips


def allowed(skip: Skip) -> str | None:
    """Why ``skip`` may pass CI, or None."""
    return ALLOWED.get(skip.test.rsplit("::", 1)[-1].split("[")[0])


def verdict(skips: list[Skip], ci: bool) -> tuple[bool, list[str]]:
    """(passes, lines to print): under CI, any skipped test not in ``ALLOWED`` fails the run."""
    lines = [f"allowed skip: {s.test} ({allowed(s)}): {s.reason}" for s in skips if allowed(s)]
    failing = [s for s in skips if not allowed(s)]
    if not failing:
        return True, lines
    container = [s for s in failing if "container" in s.markers]
    if container:
        lines.append(f"{len(container)} container tests skipped: " + "; ".join(sorted({s.reason for s in container})))
    lines += [f"skipped: {s.test}: {s.reason}" for s in failing if "container" not in s.markers]
    if ci:
        lines.append(f"CI=true: {len(failing)} tests skipped that must run; fix what their reasons name "
                     "(or, for a skip CI may accept, add it to devtools.ci_verdict.ALLOWED with why)")
    return not ci, lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m devtools.ci_verdict JUNIT_XML [JUNIT_XML ...]", file=sys.stderr)
        return 2
    ci = os.environ.get("CI", "").lower() == "true"
    try:
        skips = [skip for report in args for skip in read_skips(report)]
    except (OSError, ET.ParseError) as exc:  # a tier that never ran (make stopped before it) has none
        print(f"!! no readable test report: {exc}", file=sys.stderr)
        return 1 if ci else 0
    ok, lines = verdict(skips, ci)
    for line in lines:
        print(("== " if ok else "!! ") + line, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
