"""Is the drift alarm honest? False alarms on quiet windows, detections on shifted ones, and
the label-free estimates against the truth, on real photos through a served model.

    python -m benchmarks.bench_monitor RUN [--windows 200 --sizes 30 60 120]

RUN is a ``make bench-train`` run folder (``model/`` inside, the benchmark's ``channels/``
beside it). The model answers as the server would (ONNX Runtime through the serving
handler, calibrated probabilities) on the test split's photos, as they are and shifted
(darkened, blurred, at a quarter of the resolution), and on the sample's empty and 6+ bins.
For every window, W photos are drawn from the test split and the reference is built
(``bincounter.monitoring.reference``, as training builds it) from the rest of the test split:
a quiet window is then exchangeable with its reference, so its alarm rate is the false-alarm
rate; a shifted window holds the same kind of draw, shifted. "Only bins of 4-5 items" draws
its windows among those photos; "empty and 6+ bins" from the photos outside the model's
counts, against a reference of the other photos. Every ask carries the true count as its
record, except in the row "quiet, a fifth of the records one off": there the share of wrong
bins among ``match`` answers is not zero by construction, and the verdict mix moves away from
the reference's (which is that of correct asks) although the photos did not.

Prints per shift and window size the share of windows that raised the alarm, and for the
label-free estimates the mean error (estimate - truth) and mean absolute error over windows.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from bincounter.labels import CountRange
from bincounter.metadata import scan_dataset
from bincounter.monitoring import drift, reference
from bincounter.serving.handler import Instance, ModelHandler
from devtools.local_toolkit import SAMPLE

WRONG_RECORDS = 0.2
QUIET, QUIET_WRONG = "quiet (test photos)", "quiet, a fifth of the records one off"


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


SHIFTS = {
    "darkened (brightness x0.5)": lambda im: ImageEnhance.Brightness(im).enhance(0.5),
    "blurred (Gaussian, radius 2)": lambda im: im.filter(ImageFilter.GaussianBlur(2)),
    "quarter resolution": lambda im: im.resize((im.width // 4, im.height // 4)),
}


def probabilities(handler: ModelHandler, photos: list[bytes]) -> np.ndarray:
    instances = [Instance(b) for b in photos]
    return np.concatenate([handler.predict(handler.preprocess(instances[i:i + 64]))
                           for i in range(0, len(instances), 64)])


def pools(handler: ModelHandler, test: list, sample: Path, seed: int) -> dict[str, tuple]:
    """Per row: (window labels, window probabilities, which test photo each is, or -1)."""
    raw = [s.image_path.read_bytes() for s in test]
    labels = np.array([s.count for s in test])
    index = np.arange(len(test))
    quiet = probabilities(handler, raw)
    out = {QUIET: (labels, quiet, index), QUIET_WRONG: (labels, quiet, index)}
    for name, shift in SHIFTS.items():
        out[name] = (labels, probabilities(handler, [_jpeg(shift(Image.open(io.BytesIO(b)))) for b in raw]), index)
    keep = labels >= 4
    out["only bins of 4-5 items"] = (labels[keep], quiet[keep], index[keep])
    outside = [s for s in scan_dataset(sample, CountRange(0, 10_000))[0] if not 1 <= s.count <= 5]
    pick = np.random.default_rng(seed).choice(len(outside), size=min(len(outside), len(test)), replace=False)
    out["empty and 6+ bins"] = (np.array([outside[i].count for i in pick]),
                                probabilities(handler, [outside[i].image_path.read_bytes() for i in pick]),
                                np.full(len(pick), -1))
    return out


def answers(labels: np.ndarray, p: np.ndarray, handler: ModelHandler, rng,
            wrong_records: float) -> tuple[list[dict], np.ndarray]:
    """The server's answers with an expected quantity each (``wrong_records`` of them one off), and per answer
    whether its ask was wrong (-1 where the label is outside the model's counts: no ask)."""
    classes = handler.classes
    out, wrong = [], []
    for y, row in zip(labels, p):
        a = {"probabilities": {str(c): float(v) for c, v in zip(classes, row)}}
        if classes[0] <= y <= classes[-1]:
            expected = int(y)
            if rng.random() < wrong_records:  # one off, staying within the model's counts
                expected += 1 if y == classes[0] else -1 if y == classes[-1] else int(rng.choice([-1, 1]))
            match = float(row[expected - classes[0]])
            a["verification"] = {"expected_quantity": expected, "match_probability": match,
                                 "verdict": handler.thresholds.verdict(match, expected)}
            wrong.append(int(expected != y))
        else:
            wrong.append(-1)
        out.append(a)
    return out, np.array(wrong)


def run_windows(test: tuple, pool: tuple, handler: ModelHandler, size: int, n: int, seed: int,
                wrong_records: float = 0.0) -> dict:
    """``test``: (labels, probabilities) of the whole test split; ``pool``: a row of ``pools``."""
    labels, p, where = pool
    rng = np.random.default_rng(seed)
    asked, wrong = answers(labels, p, handler, rng, wrong_records)
    counted = np.asarray(handler.classes)[p.argmax(1)]
    alarms, acc_err, match_err, fired = 0, [], [], {}
    for _ in range(n):
        idx = rng.choice(len(asked), size=min(size, len(asked)), replace=False)
        # the reference: the test photos outside this window (a photo is never in both)
        rest = np.setdiff1d(np.arange(len(test[0])), where[idx]) if (where[idx] >= 0).all() else \
            rng.choice(len(test[0]), size=len(test[0]) - len(idx), replace=False)
        ref = reference.build(test[1][rest], test[0][rest], handler.classes, handler.thresholds)
        result = drift.compare(ref, [asked[i] for i in idx])
        alarms += result["drift"]
        for t in result["tests"]:
            fired[t["distribution"]] = fired.get(t["distribution"], 0) + t["drift"]
        e = result["estimates"]
        if e["accuracy_estimate"] is not None:
            acc_err.append(e["accuracy_estimate"] - float((counted[idx] == labels[idx]).mean()))
        matched = [i for i in idx if asked[i].get("verification", {}).get("verdict") == "match"]
        if matched and e["match_wrong_estimate"] is not None:
            match_err.append(e["match_wrong_estimate"] - float(np.mean([wrong[i] for i in matched])))
    def stats(x):
        return {"mean_error": float(np.mean(x)), "mean_abs_error": float(np.mean(np.abs(x))), "windows": len(x)} \
            if x else None
    matches = sum(a.get("verification", {}).get("verdict") == "match" for a in asked)
    return {"pool": len(asked), "pool_match_answers": matches, "size": min(size, len(asked)), "windows": n,
            "alarm_rate": alarms / n,
            "fired_by": {k: v / n for k, v in fired.items() if v},
            "accuracy_estimate": stats(acc_err), "match_wrong_estimate": stats(match_err)}


def table(results: dict) -> list[str]:
    lines = ["| live photos | pool (match answers) | window | alarms | raised by | accuracy estimate: mean error (abs) | "
             "wrong among match: mean error (abs) |", "|---|---|---|---|---|---|---|"]
    for shift, by_size in results.items():
        for r in by_size.values():
            a, m = r["accuracy_estimate"], r["match_wrong_estimate"]
            fmt = (lambda s: "n/a" if s is None else f"{s['mean_error'] * 100:+.1f} ({s['mean_abs_error'] * 100:.1f}) pts")
            by = ", ".join(f"{k} {v:.0%}" for k, v in sorted(r["fired_by"].items(), key=lambda kv: -kv[1])) or "-"
            lines.append(f"| {shift} | {r['pool']} ({r['pool_match_answers']}) | {r['size']} | {r['alarm_rate']:.1%} of {r['windows']} | {by} | "
                         f"{fmt(a)} | {fmt(m)} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="a bench-train run folder (model/ inside, channels/ beside it)")
    p.add_argument("--data", type=Path, default=SAMPLE, help="the ABID sample (its empty and 6+ bins)")
    p.add_argument("--windows", type=int, default=200, help="windows per shift and size")
    p.add_argument("--sizes", type=int, nargs="+", default=[30, 60, 120])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="every number as JSON here")
    a = p.parse_args(argv)
    if not (a.run / "model" / "model.json").is_file() or not (a.run.parent / "channels" / "test").is_dir():
        p.error(f"{a.run}: not a bench-train run folder (model/model.json and ../channels/test)")
    handler = ModelHandler.load(a.run / "model")
    samples, _ = scan_dataset(a.run.parent / "channels" / "test", CountRange(1, 5))
    print(f"{a.run}: {len(samples)} test photos, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
          flush=True)
    live = pools(handler, samples, a.data, a.seed)
    test = live[QUIET][:2]
    results = {name: {str(size): run_windows(test, pool, handler, size, a.windows, a.seed + size,
                                             WRONG_RECORDS if name == QUIET_WRONG else 0.0)
                      for size in a.sizes} for name, pool in live.items()}
    print("\n".join(table(results)))
    print(f"(alpha {drift.ALPHA} split over the tests run; load average at the end {os.getloadavg()[0]:.1f})")
    if a.out:
        a.out.write_text(json.dumps({"run": str(a.run), "date": date.today().isoformat(), "test_n": len(samples),
                                     "wrong_records": WRONG_RECORDS, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
