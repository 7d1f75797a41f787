"""The fault matrix's rows (``make bench-faults``): one module per concern, each row a real fault
at a real seam (a signal to a real process, botocore's own event hooks, an emulator answering
with the service's error shapes, a server stopped) and what the component did about it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Row:
    """One fault and its outcome: ``did`` is what the component did (answers, rows written, lost,
    duplicated), ``recover_s`` how long until it was whole again, ``passed`` against ``expect``."""
    concern: str
    fault: str
    injected: str
    expect: str
    did: str = ""
    recover_s: float | None = None
    passed: bool = False
    facts: dict = field(default_factory=dict)

    def line(self) -> str:
        rec = "" if self.recover_s is None else f"{self.recover_s:.1f}"
        return (f"| {self.concern} | {self.fault} | {self.injected} | {self.did} | {rec} | "
                f"{'pass' if self.passed else '**FAIL**'} ({self.expect}) |")


HEADER = ("| concern | fault | injected by | what it did | recovered (s) | verdict (expected) |\n"
          "|---|---|---|---|---|---|")


def table(rows: list[Row]) -> str:
    return "\n".join([HEADER, *(r.line() for r in rows)])
