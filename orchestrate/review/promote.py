"""``promote``'s decision: a candidate replaces the approved model only when it counts the
golden bins right measurably more often (McNemar's exact test on the same bins, at
``[review] promote_alpha``); the first candidate only when its verdicts keep its card's
targets on the golden set. ``--force`` approves anyway and says so in the approval."""

from __future__ import annotations

import json
from dataclasses import dataclass

from orchestrate.review.scoring import Score, mcnemar


@dataclass(frozen=True)
class Decision:
    approve: bool
    why: str
    forced: bool = False

    @property
    def description(self) -> str:
        """The package's ApprovalDescription."""
        return ("forced by promote --force; " if self.forced else "") + self.why


def _rate(pair) -> str:
    r = Score.rate(pair)
    return "n/a (n 0)" if r is None else f"{r:.1%} ({pair[0]}/{pair[1]})"


def table(scores: dict[str, Score]) -> list[str]:
    """The scores side by side (Markdown)."""
    names = list(scores)
    out = ["| on the golden set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    rows = [("bins", lambda s: str(s.n)), ("accuracy", lambda s: f"{s.accuracy:.1%}"),
            ("RMSE", lambda s: f"{s.rmse:.3f}"), ("answered without a person", lambda s: f"{s.auto_share:.1%}"),
            ("false match", lambda s: _rate(s.false_match)), ("false mismatch", lambda s: _rate(s.false_mismatch)),
            ("no answer", lambda s: str(s.failed))]
    out += [f"| {label} | " + " | ".join(f(scores[n]) for n in names) + " |" for label, f in rows]
    return out


def decide(candidate: Score, approved: Score | None, targets: dict, alpha: float, force: bool = False) -> Decision:
    """Whether ``candidate`` should be approved, and why, in one sentence."""
    if approved is None:
        over = [f"{name} {_rate(pair)} above its target {targets[key]:.1%}"
                for name, key, pair in (("false match", "max_false_match", candidate.false_match),
                                        ("false mismatch", "max_false_mismatch", candidate.false_mismatch))
                if key in targets and pair[1] and pair[0] / pair[1] > targets[key]]
        if over:
            return Decision(force, "first model: its verdicts miss their targets on the golden set: "
                            + "; ".join(over), force)
        return Decision(True, f"first model: its verdicts keep their targets on the {candidate.n} golden bins "
                        f"(targets {json.dumps(targets, sort_keys=True)})")
    only_new, only_old, p = mcnemar(candidate, approved)
    paired = (f"on the same {candidate.n} golden bins the candidate alone counts {only_new} right, the approved "
              f"model alone {only_old} (McNemar exact p = {p:.3g}, alpha {alpha})")
    if only_new > only_old and p < alpha:
        return Decision(True, f"wins: {paired}")
    why = "not better beyond noise" if only_new > only_old else "not better"
    return Decision(force, f"{why}: {paired}", force)
