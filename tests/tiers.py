"""The test tiers, held at collection: a test that uses a training run, a server process
or moto (itself, or through any fixture it uses) must carry ``slow``, which keeps it out of
``make test-fast``; one that needs Docker carries ``container``, kept out of ``make test``.

What "uses" means is read off the source of the test and of every fixture in its closure:
the calls that start those things (``HEAVY``). A test that breaks the rule fails the whole
collection with its name and what it uses, so a tier cannot drift again.
"""

from __future__ import annotations

import functools
import inspect

import pytest

# a call that appears in a test's or a fixture's source -> what it starts
HEAVY = {
    "run_toolkit_train(": "a training run",
    "session_training_run(": "a training run",
    "run_train(": "a training run",
    "start_toolkit(": "a training run",
    "start_serve(": "a server process",
    "launch_serve(": "a server process",
    "spawn([": "a server process",
    "start_label_studio(": "a server process",
    "ThreadedMotoServer(": "moto",
}
TIER_MARKERS = ("slow", "container")


@functools.lru_cache(maxsize=None)
def _starts(func) -> frozenset[str]:
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return frozenset()
    return frozenset(what for call, what in HEAVY.items() if call in source)


def heavy_uses(item: pytest.Item) -> set[str]:
    """What ``item`` starts, by itself or through the fixtures it uses."""
    funcs = [getattr(item, "function", None)]
    funcs += [d.func for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs]
    return {what for f in funcs if f is not None for what in _starts(f)}


def misplaced(items: list[pytest.Item]) -> list[str]:
    return [f"{item.nodeid}: uses {' and '.join(sorted(uses))} without @pytest.mark.slow"
            for item in items if not any(item.get_closest_marker(m) for m in TIER_MARKERS)
            for uses in [heavy_uses(item)] if uses]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong = misplaced(items)
    if wrong:
        raise pytest.UsageError("tests in the fast tier that are not fast (mark them slow, or use "
                                "devtools.random_model / the Flask test client):\n  " + "\n  ".join(wrong))
