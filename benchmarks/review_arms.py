"""bench-review's pieces: the split, the base model's scored pool, the corrupted records of the
cleaning arm and the calibration-from-recounts arm. ``bench_review`` runs them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from benchmarks.bench_train import link_channel
from bincounter.guarantees import choose
from bincounter.modelcard import ModelCard
from bincounter.reviews import HumanLabel, write_labels
from bincounter.verification import make_asks, measure
from orchestrate.audit.join import Row
from orchestrate.audit.report import recount_order
from orchestrate.review.picks import Pool
from orchestrate.review.pool import score

COUNTS = (1, 2, 3, 4, 5)


def split(samples: list, split_seed: int) -> tuple[list, list, list]:
    """(test 600, validation 300, pool): fixed by the split seed, the same for every arm."""
    samples = sorted(samples, key=lambda s: s.id)
    random.Random(split_seed).shuffle(samples)
    return samples[:600], samples[600:900], samples[900:]


def corrupt(records: dict[str, int], share: float, seed: int) -> dict[str, int]:
    """The records with exactly round(share x n) of them moved one count up or down (the common
    picking error; 1 only up, 5 only down), the bins and directions drawn by the seed."""
    rng = random.Random(seed)
    wrong = rng.sample(sorted(records), round(share * len(records)))
    out = dict(records)
    for bin_id in wrong:
        c = records[bin_id]
        out[bin_id] = c + 1 if c == COUNTS[0] else c - 1 if c == COUNTS[-1] else c + rng.choice((-1, 1))
    return out


def records_channel(samples: list, records: dict[str, int], out: Path) -> Path:
    """An ABID-layout channel whose metadata says ``records`` (a bin's photo linked, its metadata
    rewritten only where the record differs from the sample's)."""
    link_channel([s for s in samples if records[s.id] == s.count], out)
    for s in samples:
        if records[s.id] != s.count:
            (out / "images" / s.image_path.name).symlink_to(s.image_path.resolve())
            meta = json.loads((s.image_path.parent.parent / "metadata" / f"{s.id}.json").read_text())
            meta["EXPECTED_QUANTITY"] = records[s.id]
            (out / "metadata" / f"{s.id}.json").write_text(json.dumps(meta))
    return out


def labels_channel(picked: list, out: Path, purpose: str, strategy: str) -> Path:
    """People's counts for ``picked``: the sample's true counts stand in for a person's."""
    out.mkdir(parents=True, exist_ok=True)
    write_labels(out / "labels.jsonl", [HumanLabel(str(s.image_path), str(s.count), expected_quantity=s.count,
                                                   job="bench-review", purpose=purpose, strategy=strategy)
                                        for s in picked])
    return out


def scored_pool(model_dir: Path, samples: list, records: dict[str, int]) -> tuple[Pool, np.ndarray]:
    """The audit of ``samples`` against ``records`` by the model: the strategies' pool (the
    card's verdicts, the audit report's recount order, every probability and the embedding)."""
    scored = score(model_dir, [(s.id, str(s.image_path)) for s in samples], lambda p: Path(p).read_bytes())
    assert not scored.unreadable, scored.unreadable
    card = ModelCard.read(model_dir)
    recorded = np.array([records[i] for i in scored.ids])
    p_rec = scored.probabilities[np.arange(len(recorded)), recorded - 1]
    verdicts = card.verification.verdicts(p_rec, recorded)
    rows = [Row(i, int(e), int(p.argmax()) + 1, float(pe), verdict=str(v))
            for i, e, p, pe, v in zip(scored.ids, recorded, scored.probabilities, p_rec, verdicts)]
    rank = {r.bin_id: n for n, r in enumerate(recount_order(rows))}
    return (Pool(scored.ids, recorded, np.array([rank.get(i, np.inf) for i in scored.ids], dtype=float), COUNTS,
                 scored.probabilities, scored.embedding), verdicts)


def found_wrong(order: list[str], wrong: set[str], budgets: list[int]) -> dict[int, int]:
    """Wrong records among the first B of ``order``, per B."""
    return {str(b): len(wrong & set(order[:b])) for b in budgets}


def calibration_from_recounts(model_dir: Path, candidates: list, test: list, sizes: list[int],
                              seed: int) -> list[dict]:
    """The card's thresholds fitted again on ``n`` recounted bins (people's counts: the sample's),
    with the same targets and guarantee, and measured on the test split: per-count auto share,
    the rates and what each count still lacks. n = 0 is the card as trained (fitted on validation)."""
    card = ModelCard.read(model_dir)
    v = card.operating_point
    targets, guarantee, confidence = v["targets"], v["guarantee"], v["confidence"]
    read = lambda p: Path(p).read_bytes()  # noqa: E731
    cal = score(model_dir, [(s.id, str(s.image_path)) for s in candidates], read)
    tst = score(model_dir, [(s.id, str(s.image_path)) for s in test], read)
    truth = {s.id: s.count for s in candidates + test}
    test_asks = make_asks(tst.probabilities, np.array([truth[i] for i in tst.ids]), list(COUNTS))
    order = np.random.default_rng(seed).permutation(len(cal.ids))
    unmet = [(u["count"], u["verdict"], u["asks"], u["needs"]) for u in v.get("unmet", [])]
    out = [{"n": 0, "seed": seed, **_point(measure(test_asks, card.verification), unmet)}]
    for n in sizes:
        rows = order[:n]
        asks = make_asks(cal.probabilities[rows], np.array([truth[cal.ids[i]] for i in rows]), list(COUNTS))
        choice = choose(asks, list(COUNTS), targets["max_false_match"], targets["max_false_mismatch"], guarantee,
                        confidence)
        out.append({"n": n, "seed": seed, **_point(measure(test_asks, choice.rule), choice.unmet)})
    return out


def _point(m: dict, unmet) -> dict:
    return {"auto_share": m["auto_share"], "false_match": m["false_match_rate"],
            "false_mismatch": m["false_mismatch_rate"],
            "per_count_auto": {str(c): m["per_expected"][str(c)]["auto_share"] for c in COUNTS},
            "unmet": [{"count": c, "verdict": v, "asks": n, "needs": need} for c, v, n, need in unmet]}

