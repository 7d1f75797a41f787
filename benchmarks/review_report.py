"""bench-review's tables, from its results JSON (``bench_review --json F --report`` prints them again)."""

from __future__ import annotations

import math
from statistics import mean, stdev

COUNTS = ("1", "2", "3", "4", "5")


def _sd(xs: list[float]) -> float:
    return stdev(xs) if len(xs) > 1 else float("nan")


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:.1f}"


def paired(a: list[dict], b: list[dict], key: str) -> tuple[float, float, bool]:
    """Mean and standard deviation of ``a - b`` per seed, and whether the mean is beyond two
    standard errors (the seed spread) of those differences."""
    by = {r["seed"]: r[key] for r in b}
    d = [r[key] - by[r["seed"]] for r in a if r["seed"] in by]
    if len(d) < 2:
        return (d[0] if d else float("nan")), float("nan"), False
    m, s = mean(d), stdev(d)
    return m, s, abs(m) > 2 * s / math.sqrt(len(d))


def arm_cells(rs: list[dict], baseline: list[dict]) -> str:
    """An arm's accuracy (mean ± sd over seeds), its paired difference to ``baseline`` (empty
    when it is the baseline), its RMSE and auto share: the middle of a row."""
    acc = [r["accuracy"] for r in rs]
    vs = ""
    if baseline and rs is not baseline:
        m, s, beyond = paired(rs, baseline, "accuracy")
        vs = f"{m * 100:+.1f} ± {_pct(s)}{' **beyond the spread**' if beyond else ''}"
    return (f"{_pct(mean(acc))} ± {_pct(_sd(acc))} | {vs} | {mean(r['rmse'] for r in rs):.3f} "
            f"| {_pct(mean(r['auto_share'] for r in rs))}")


def grid_table(runs: list[dict]) -> list[str]:
    lines = ["| B | strategy | seeds | accuracy % mean ± sd | vs random (pp, mean ± sd) | RMSE | auto % "
             "| auto % per count 1/2/3/4/5 | picks' counts 1/2/3/4/5 |", "|---|---|---|---|---|---|---|---|---|"]
    base = [r for r in runs if r["strategy"] == "base"]
    if base:
        acc = [r["accuracy"] for r in base]
        lines.append(f"| 0 | base | {len(base)} | {_pct(mean(acc))} ± {_pct(_sd(acc))} | | "
                     f"{mean(r['rmse'] for r in base):.3f} | {_pct(mean(r['auto_share'] for r in base))} | | |")
    for b in sorted({r["B"] for r in runs if r["B"]}):
        at = [r for r in runs if r["B"] == b]
        by = {k: [r for r in at if r["strategy"] == k] for k in dict.fromkeys(r["strategy"] for r in at)}
        for strategy, rs in by.items():
            per = "/".join(_pct(mean(r["per_count_auto"][c] or 0 for r in rs)) for c in COUNTS)
            mix = "/".join(f"{mean(r['picked_counts'][c] for r in rs):.0f}" for c in COUNTS)
            lines.append(f"| {b} | {strategy} | {len(rs)} | {arm_cells(rs, by.get('random', []))} | {per} | {mix} |")
    return lines


def recounts_table(runs: list[dict]) -> list[str]:
    """Recount answers in training: as they are, capped per count, or left out (``none``)."""
    by = {k: [r for r in runs if r["variant"] == k] for k in dict.fromkeys(r["variant"] for r in runs)}
    lines = ["| recount answers | seeds | added (counts 1/2/3/4/5) | accuracy % mean ± sd | vs none (pp, mean ± sd) "
             "| RMSE | auto % |", "|---|---|---|---|---|---|---|"]
    for variant, rs in by.items():
        mix = "/".join(f"{mean(r['recount_counts'][c] for r in rs):.0f}" for c in COUNTS)
        lines.append(f"| {variant} | {len(rs)} | {mix} | {arm_cells(rs, by.get('none', []))} |")
    return lines


def cleaning_table(runs: list[dict]) -> list[str]:
    budgets = sorted({int(b) for r in runs for b in r["found"]["recount-head"]}, key=int)
    lines = [f"{len(runs)} seeds; {runs[0]['noise']:.0%} of the pool's records one count off: "
             f"{mean(r['wrong'] for r in runs):.0f} wrong, {mean(r['audited_wrong'] for r in runs):.0f} of them "
             f"among the {runs[0]['audited']} audited; recount list {mean(r['recount_list'] for r in runs):.0f} long",
             "", "| B recounted | wrong found: recount order | random | wrong left: recount order | random |",
             "|---|---|---|---|---|"]
    for b in budgets:
        found = {o: mean(r["found"][o][str(b)] for r in runs)
                 for o in ("recount-head", "random")}
        left = {o: mean(r["audited_wrong"] for r in runs) - f for o, f in found.items()}
        lines.append(f"| {b} | {found['recount-head']:.1f} | {found['random']:.1f} | {left['recount-head']:.1f} "
                     f"| {left['random']:.1f} |")
    lines += ["", "| retrained on the whole pool | wrong records fixed | accuracy % mean ± sd | RMSE |",
              "|---|---|---|---|"]
    for arm in ("noisy", "recount-head", "random"):
        ms = [r["models"][arm] for r in runs if arm in r["models"]]
        acc = [m["accuracy"] for m in ms]
        lines.append(f"| {arm} | {mean(m['fixed'] for m in ms):.1f} | {_pct(mean(acc))} ± {_pct(_sd(acc))} "
                     f"| {mean(m['rmse'] for m in ms):.3f} |")
    return lines


def calibration_table(points: list[dict]) -> list[str]:
    lines = ["| recounted bins fitting the thresholds | seeds | auto % | auto % per count 1/2/3/4/5 | false match % "
             "| counts that never answer match (asks / needed) |", "|---|---|---|---|---|---|"]
    for n in sorted({p["n"] for p in points}):
        ps = [p for p in points if p["n"] == n]
        per = "/".join(_pct(mean(p["per_count_auto"][c] or 0 for p in ps)) for c in COUNTS)
        fm = [p["false_match"] for p in ps if p["false_match"] is not None]
        unmet = {}
        for p in ps:
            for u in p["unmet"]:
                if u["verdict"] == "match":
                    unmet.setdefault(u["count"], []).append((u["asks"], u["needs"]))
        never = ", ".join(f"{c} ({mean(a for a, _ in v):.0f} / {v[0][1]}, {len(v)} of {len(ps)} seeds)"
                          for c, v in sorted(unmet.items()))
        lines.append(f"| {'validation (the card)' if n == 0 else n} | {len(ps)} | {_pct(mean(p['auto_share'] for p in ps))} "
                     f"| {per} | {_pct(mean(fm)) if fm else 'n/a'} | {never or 'none'} |")
    return lines


def report(results: dict) -> str:
    out = []
    if results.get("grid"):
        out += ["## Which bins teach: strategies against random", "", *grid_table(results["grid"]), ""]
    if results.get("recounts"):
        b = results["recounts"][0]["B"]
        out += [f"## Recount answers in training (beside {b} random training picks)", "",
                *recounts_table(results["recounts"]), ""]
    if results.get("cleaning"):
        out += ["## What recounts fix: the cleaning arm", "", *cleaning_table(results["cleaning"]), ""]
    if results.get("calibration"):
        out += ["## Recounts make the promise tighter: thresholds fitted on recounted bins", "",
                *calibration_table(results["calibration"]), ""]
    return "\n".join(out)
