"""``promote``'s decision, on evidence only.

- A candidate replaces the incumbent (the model the endpoint serves) only when it alone counts
  more golden bins right and McNemar's exact one-sided test puts that beyond noise (p below
  ``[review] promote_alpha``).
- The first model, with nothing to compare against, only when the golden set can vouch for
  every verdict it gives: each side it answers (per expected count, as its card's guarantee
  promises) has at least the asks that guarantee needs (the n its card's ``unmet`` names when
  calibration had too few), and the golden rates keep its targets. A model that answers every
  golden ask ``review`` gives nothing to vouch for and is refused too.

``--force`` approves anyway, and the approval says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bincounter.guarantees import CONFIDENCE, min_asks
from bincounter.modelcard import ModelCard
from orchestrate.review.scoring import Score, mcnemar

SIDES = (("match", "match_at", "max_false_match", "false_match_n", "wrong"),
         ("mismatch", "mismatch_at", "max_false_mismatch", "false_mismatch_n", "correct"))


@dataclass(frozen=True)
class Decision:
    approve: bool
    why: str
    forced: bool = False

    @property
    def description(self) -> str:
        """The package's ApprovalDescription."""
        return ("forced by promote --force; " if self.forced else "") + self.why


@dataclass(frozen=True)
class Side:
    """One verdict side a card answers, and what the golden set holds to vouch for it."""
    count: str       # an expected count, or "all" for a pooled rule
    verdict: str     # "match" / "mismatch"
    asks: int        # golden asks of its kind (wrong asks for match, correct asks for mismatch)
    needs: int       # the fewest asks its guarantee needs to vouch for its target

    def line(self, kind: str) -> str:
        where = "" if self.count == "all" else f" of expected count {self.count}"
        return f"`{self.verdict}`{where}: {self.asks} {kind} asks, needs {self.needs}"


def sides(score: Score, card: ModelCard) -> list[Side]:
    """Every side ``card`` answers (a threshold that fires) with the golden asks it had."""
    op = card.operating_point or {}
    targets, guarantee = op.get("targets") or {}, op.get("guarantee") or "pooled"
    rule = "conformal" if guarantee == "conformal" else "upper-bound"
    confidence = float(op.get("confidence") or CONFIDENCE)
    pairs = [(str(c), t) for c, t in card.verification.per_count] or [("all", card.verification.pooled)]
    found = []
    for count, thresholds in pairs:
        rates = score.rates if count == "all" else score.rates.get("per_expected", {}).get(count, {})
        for verdict, attr, target_key, n_key, _ in SIDES:
            if getattr(thresholds, attr) is None or target_key not in targets:
                continue
            found.append(Side(count, verdict, int(rates.get(n_key) or 0),
                              min_asks(float(targets[target_key]), rule, confidence)))
    return found


def _rate(pair: tuple[int, int]) -> str:
    r = Score.rate(pair)
    return "n/a (n 0)" if r is None else f"{r:.1%} ({pair[0]}/{pair[1]})"


def table(scores: dict[str, Score]) -> list[str]:
    """The scores side by side (Markdown)."""
    names = list(scores)
    out = ["| on the golden set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    rows = [("bins", lambda s: str(s.n)), ("accuracy", lambda s: f"{s.accuracy:.1%}"),
            ("RMSE", lambda s: f"{s.rmse:.3f}"), ("asks answered without a person", lambda s: f"{s.auto_share:.1%}"),
            ("false match (wrong asks answered match)", lambda s: _rate(s.false_match)),
            ("false mismatch (correct asks answered mismatch)", lambda s: _rate(s.false_mismatch)),
            ("no answer", lambda s: str(s.failed))]
    out += [f"| {label} | " + " | ".join(f(scores[n]) for n in names) + " |" for label, f in rows]
    return out


def first(candidate: Score, card: ModelCard, force: bool = False) -> Decision:
    """The first model: approved only on the evidence the module docstring names."""
    answered = sides(candidate, card)
    if not (card.operating_point or {}).get("targets"):
        return Decision(force, "first model: its card states no verdict targets, so nothing can be checked", force)
    if not answered:
        return Decision(force, f"first model: it answers every ask `review` (no verdict side fires), so the "
                               f"{candidate.n} golden bins have nothing to vouch for", force)
    short = [s for s in answered if s.asks < s.needs]
    if short:
        kinds = {v: kind for v, _, _, _, kind in SIDES}
        return Decision(force, "first model: the golden set is too small to vouch for its verdicts: "
                        + "; ".join(s.line(kinds[s.verdict]) for s in short)
                        + " (grow the golden set: orchestrate golden --from ... --replace)", force)
    targets = card.operating_point["targets"]
    over = [f"{name} {_rate(pair)} above its target {targets[key]:.1%}"
            for name, key, pair in (("false match", "max_false_match", candidate.false_match),
                                    ("false mismatch", "max_false_mismatch", candidate.false_mismatch))
            if key in targets and pair[1] and pair[0] / pair[1] > targets[key]]
    if over:
        return Decision(force, "first model: its verdicts miss their targets on the golden set: " + "; ".join(over),
                        force)
    return Decision(True, f"first model: on the {candidate.n} golden bins every verdict side it answers had the "
                          f"asks its guarantee needs ({len(answered)} sides, fewest "
                          f"{min(s.asks for s in answered)} asks) and kept its targets "
                          f"({json.dumps(targets, sort_keys=True)})")


def against(candidate: Score, incumbent: Score, alpha: float, force: bool = False) -> Decision:
    """A candidate against the incumbent on the same golden bins."""
    only_new, only_old, p = mcnemar(candidate, incumbent)
    paired = (f"on the same {candidate.n} golden bins the candidate alone counts {only_new} right, the incumbent "
              f"alone {only_old} (McNemar exact one-sided p = {p:.3g}, alpha {alpha})")
    if only_new > only_old and p < alpha:
        return Decision(True, f"wins: {paired}")
    why = "not better beyond noise" if only_new > only_old else "not better"
    return Decision(force, f"{why}: {paired}", force)
