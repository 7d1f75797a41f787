"""An audit's outputs: ``audit.csv`` (one row per photo) and ``audit.md`` (verdict counts,
the recount list, a per-count table, the model's operating point, the failures, the
cost: ``costs.Cost``)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from bincounter.guarantees import miss_lines
from bincounter.modelcard import ModelCard
from orchestrate.audit.join import ALL_VERDICTS, FAILED, NO_EXPECTED, NOT_VERIFIABLE, UNREAD, Row, Transformed
from orchestrate.core.costs import Cost

# confidence: the probability of the counted class; photo: where the photo is (what `review export` sends)
CSV_COLUMNS = ("bin_id", "expected", "counted", "match_probability", "verdict", "error", "confidence", "photo")
LABELS = {"match": "match", "review": "review (a person looks)", "mismatch": "mismatch (recount)",
          NOT_VERIFIABLE: "expected quantity outside the model's counts", NO_EXPECTED: "no expected quantity",
          FAILED: "error (the photo was not counted)"}


def recount_order(rows: list[Row]) -> list[Row]:
    """Mismatches, most certain first (lowest probability of the expected count), then reviews."""
    def key(r: Row):
        return (0 if r.verdict == "mismatch" else 1, r.match_probability, r.bin_id)
    return sorted((r for r in rows if r.verdict in ("mismatch", "review")), key=key)


def _replace(path: Path, text: str) -> Path:
    """Write to a temporary name, then move: a reader (or a run killed mid-write) never leaves or
    sees half a report (bench-faults' "audit killed mid-join" row)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_csv(rows: list[Row], path: Path, photos: dict[str, str] | None = None) -> Path:
    photos = photos or {}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([r.bin_id, "" if r.expected is None else r.expected, "" if r.counted is None else r.counted,
                        "" if r.match_probability is None else f"{r.match_probability:.6f}", r.verdict, r.error,
                        "" if r.confidence is None else f"{r.confidence:.6f}", photos.get(r.bin_id, "")])
    tmp.replace(path)
    return path


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def operating_point(card: ModelCard) -> list[str]:
    """The verdicts' operating point as model.json states it: thresholds, the targets they were
    chosen for and how, and the rates measured on the test split. Nothing is computed here."""
    rule, op = card.verification, card.operating_point or {}
    lines = ["- match when the model's probability of the expected count is at least match_at; mismatch "
             f"when at most mismatch_at; review between ({rule.describe()}; never: that verdict is not given)"]
    targets = op.get("targets") or {}
    if targets:
        lines.append("- chosen for: " + ", ".join(f"{k} {v:.1%}" for k, v in targets.items())
                     + (f", {op['promise']}" if op.get("promise") else "")
                     + (f" ({op['method']})" if op.get("method") else ""))
    test = card.served_test_point()
    if test:
        lines.append(f"- measured on the model's own test split ({card.onnx_file}): false match {_pct(test.get('false_match_rate'))} "
                     f"of {test.get('false_match_n')} wrong asks, false mismatch "
                     f"{_pct(test.get('false_mismatch_rate'))} of {test.get('false_mismatch_n')} correct asks, "
                     f"{_pct(test.get('auto_share'))} answered without review")
        lines += [f"- **above target** on that test split: {line}" for line in (miss_lines(test, targets) if targets else [])]
    else:
        lines.append("- no error rates were measured for these thresholds (model.json has no "
                     "verification.measured): treat the verdicts as unmeasured")
    lines += [f"- note: {n}" for n in op.get("notes") or []]
    return lines


def _table(header: list[str], rows: list[list]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _capped(rows: list, limit: int, to_line) -> tuple[list, list[str]]:
    more = [f"\n… and {len(rows) - limit:,} more in audit.csv"] if len(rows) > limit else []
    return [to_line(r) for r in rows[:limit]], more


def _p(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def render_md(rows: list[Row], title: str, facts: list[str], card: ModelCard, cost: Cost | None,
              limit: int = 100) -> str:
    n = len(rows)
    counts = Counter(r.verdict for r in rows)
    out = [f"# {title}", "", *facts, "", "## Verdicts", ""]
    out += _table(["verdict", "bins", "share"],
                  [[LABELS[v], f"{counts[v]:,}", f"{counts[v] / n:.1%}"] for v in ALL_VERDICTS if counts[v]]
                  + [["**all photos**", f"**{n:,}**", "100%"]])
    out += ["", "## Operating point (model.json)", "", *operating_point(card)]
    recount = recount_order(rows)
    out += ["", f"## Recount first ({len(recount):,})", "",
            "Mismatches, most certain first (lowest probability of the expected count), then reviews.", ""]
    lines, more = _capped(recount, limit, lambda r: [r.bin_id, r.expected, r.counted, _p(r.match_probability),
                                                      r.verdict])
    out += (_table(["bin", "expected", "counted", "P(expected)", "verdict"], lines) + more) if recount else ["none"]
    out += ["", "## Per expected quantity", ""]
    per = sorted({r.expected for r in rows if r.expected is not None})
    table = []
    for q in per:
        group = [r for r in rows if r.expected == q]
        c = Counter(r.verdict for r in group)
        answered = [r for r in group if r.counted is not None]
        agree = sum(r.counted == q for r in answered)
        table.append([q, len(group), c["match"], c["review"], c["mismatch"], c[NOT_VERIFIABLE], c[FAILED],
                      f"{agree / len(answered):.1%}" if answered else "n/a"])
    out += _table(["expected", "bins", "match", "review", "mismatch", "not verifiable", "failed",
                   "model's count = expected"], table) if table else ["no bin has an expected quantity"]
    for verdict, heading in ((FAILED, "Failed photos"), (NO_EXPECTED, "No expected quantity"),
                             (NOT_VERIFIABLE, "Expected quantity outside the model's counts")):
        group = [r for r in rows if r.verdict == verdict]
        if group:
            lines, more = _capped(group, limit, lambda r: [r.bin_id, r.error.replace("|", "/")])
            out += ["", f"## {heading} ({len(group):,})", ""] + _table(["bin", "reason"], lines) + more
    out += ["", "## Cost", "", cost.line() if cost else "not priced (no instance time reported)", ""]
    return "\n".join(out)


def write(rows: list[Row], out_dir: Path, title: str, facts: list[str], card: ModelCard,
          cost: Cost | None, limit: int = 100, photos: dict[str, str] | None = None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = _replace(out_dir / "audit.md", render_md(rows, title, facts, card, cost, limit))
    summary = _replace(out_dir / "audit.json", json.dumps(summary_doc(rows, cost), indent=1))
    return {"csv": write_csv(rows, out_dir / "audit.csv", photos), "md": md, "json": summary}


def summary_doc(rows: list[Row], cost: Cost | None) -> dict:
    counts = Counter(r.verdict for r in rows)
    return {"photos": len(rows), "verdicts": {v: counts[v] for v in ALL_VERDICTS},
            "recount": [r.bin_id for r in recount_order(rows)],
            "cost": None if cost is None else {"instance_seconds": cost.instance_seconds,
                                               "hourly_price": cost.hourly_price, "instances": cost.instances,
                                               "total": round(cost.total, 6),
                                               "per_1000_bins": round(cost.per(1000), 6),
                                               "per_million_bins": round(cost.per(1_000_000), 4)}}


def summary(rows: list[Row], cost: Cost | None, paths: dict[str, Path]) -> str:
    """The few lines printed at the end of a run."""
    counts = Counter(r.verdict for r in rows)
    lines = [f"audit: {len(rows):,} photos: " + ", ".join(f"{counts[v]:,} {v}" for v in ALL_VERDICTS),
             f"recount first: {len(recount_order(rows)):,} bins (mismatch, then review)"]
    unread = sum(r.error.startswith(UNREAD) for r in rows)
    if unread:
        lines.append(f"{unread:,} outputs could not be read (error rows saying '{UNREAD}'): join again to complete "
                     "the audit (`orchestrate audit --job JOB`; a local audit: the same command)")
    if cost:
        lines.append(f"cost: {cost.line()}")
    lines.append(f"report: {paths['md']}  rows: {paths['csv']}")
    return "\n".join(lines)


def report(rows: list[Row], done: Transformed, limit: int, photos: dict[str, str] | None = None) -> dict[str, Path]:
    """The audit's last step: audit.csv / audit.md / audit.json into ``done.out``, and the
    summary printed. ``photos``: where each bin's photo is, by bin id (audit.csv's ``photo``)."""
    paths = write(rows, done.out, done.title, list(done.facts), done.card, done.cost, limit, photos)
    print(summary(rows, done.cost, paths))
    return paths
