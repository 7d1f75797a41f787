"""How to make the int8 twin: calibration methods, sizes and data types side by side,
on one trained model, with the code training runs (``bincounter.training.quantize``).

    python -m benchmarks.bench_quantize --tree /tmp/bench_serve/tree     # make bench-quantize
    python -m benchmarks.bench_quantize --tree T --variants minmax:256 entropy:256

``--tree`` is the /opt/ml tree a toolkit run trained in (``make bench-serve`` leaves
one): its ``model/`` holds the fp32 model, ``output/data/split.json`` says which
images were training and test. Each variant goes through training's own
``quantize_model`` in a fresh process (so its peak memory is its own): calibrated
on training images and measured against fp32 on the whole test split through the
server's session, the fp32 baseline re-measured in every variant's process, side
by side. Each variant's folder under ``TREE/bench_quantize`` is left a complete
model folder (``bench_serve --model-dir`` serves it).

A variant is METHOD:IMAGES[:u8|s8][:rr][:extreme] (activation type, default u8;
rr = reduce_range; extreme: MinMax ranges from all images' extremes instead of the
mean of each image's range), or training:IMAGES, what training does: both MinMax
range rules, the one agreeing with fp32 more often on the validation split kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import resource
import sys
from pathlib import Path

DEFAULT_VARIANTS = ["training:256", "minmax:256", "minmax:256:extreme", "percentile:256", "minmax:64", "minmax:512",
                    "minmax:256:u8:rr", "minmax:256:s8"]
METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def parse_variant(text: str):
    from bincounter.training.quantize import Recipe, candidates

    parts = text.lower().split(":")
    if parts[0] == "training" and len(parts) == 2:
        return candidates(int(parts[1]))
    if parts[0] not in METHODS or len(parts) < 2:
        raise SystemExit(f"variant {text!r}: expected training:IMAGES or METHOD:IMAGES[:u8|s8][:rr][:extreme], "
                         f"METHOD in {sorted(METHODS)}")
    return [Recipe(calibration=METHODS[parts[0]], images=int(parts[1]),
                   activations="QInt8" if "s8" in parts[2:] else "QUInt8", reduce_range="rr" in parts[2:],
                   ranges="extreme" if "extreme" in parts[2:] else "mean")]


def load_splits(tree: Path) -> dict:
    """train, validation and test samples of the run that trained ``tree/model``, from its split.json."""
    from bincounter.metadata import scan_dataset
    from bincounter.modelcard import ModelCard
    from bincounter.split import read_manifest

    card = ModelCard.read(tree / "model")
    by_id = {}
    for channel in sorted((tree / "input" / "data").iterdir()):
        by_id.update({s.id: s for s in scan_dataset(channel, card.count_range)[0]})
    split = read_manifest(tree / "output" / "data" / "split.json")
    return {name: [by_id[i] for i in split[name]] for name in ("train", "validation", "test")}


def measure_variant(tree: str, variant: str, work: str) -> dict:
    """One variant in this (fresh) process, through training's own ``quantize_model`` on a
    folder holding the run's fp32 graph: quantize, answer the test split, time batch 1."""
    from bincounter.modelcard import MODEL_INT8_ONNX, MODEL_ONNX, MODEL_PTH, ModelCard
    from bincounter.training.hyperparameters import PARAMS
    from bincounter.training.int8_checks import Criteria
    from bincounter.training.quantize import quantize_model

    card = ModelCard.read(Path(tree) / "model")
    folder = Path(work) / variant.replace(":", "-")
    folder.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_ONNX, MODEL_PTH):
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to((Path(tree) / "model" / name).resolve())
    splits = load_splits(Path(tree))
    # the run's own rule: its int8-max-drop and false-match target, at its thresholds
    hp = card.training.get("hyperparameters", {})
    criteria = Criteria(hp.get("int8-max-drop", PARAMS["int8-max-drop"].default),
                        card.operating_point["targets"]["max_false_match"])
    section = quantize_model(folder, MODEL_ONNX, splits, card.preprocess, card.classes,
                             card.verification, criteria, parse_variant(variant), threads=os.cpu_count() or 1)
    # a complete model folder, as training would have written it with this recipe
    # (``bench_serve --model-dir`` takes it)
    dataclasses.replace(card, quantization=section,
                        onnx_file=MODEL_INT8_ONNX if section.get("served") else MODEL_ONNX).write(folder)
    return {"variant": variant, "section": section, "folder": str(folder),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "load_average": round(os.getloadavg()[0], 2)}


def table(rows: list[dict]) -> str:
    measured = [r for r in rows if "test" in r["section"]]
    lines = [f"{r['variant']}: failed: {'; '.join(r['section']['reasons'])}" for r in rows if r not in measured]
    if not measured:
        return "\n".join(lines)
    f = measured[0]["section"]["test"]["fp32"]
    lines += [f"fp32: accuracy {f['accuracy'] * 100:.2f} %, RMSE {f['rmse']:.3f}, false-match rate "
              f"{f['verification']['false_match_rate']:.4f} (test n={f['n']})", "",
              "| variant | cal. images | accuracy % | Δ pp | RMSE | ΔRMSE | top-1 agree % | max Δp | FMR "
              "| int8 ms | fp32 ms | quantize s | peak MB | served? |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in measured:
        q = r["section"]
        t, ms = q["test"], q["speed"]["ms_per_image"]
        i, f = t["int8"], t["fp32"]
        lines.append(
            f"| {r['variant']}{' -> ' + q['recipe']['ranges'] if 'choice' in q else ''} | {q['recipe']['images']} | {i['accuracy'] * 100:.2f} | "
            f"{(i['accuracy'] - f['accuracy']) * 100:+.2f} | {i['rmse']:.3f} | {i['rmse'] - f['rmse']:+.3f} | "
            f"{t['top1_agreement'] * 100:.1f} | {t['max_abs_probability_difference']:.3f} | "
            f"{i['verification']['false_match_rate']:.4f} | {ms.get('int8', float('nan')):.1f} | "
            f"{ms.get('fp32', float('nan')):.1f} | {q['seconds']['calibrate_and_write']:.0f} | {r['peak_rss_mb']} | "
            f"{'yes' if q['served'] else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", type=Path, default=Path("/tmp/bench_serve/tree"),
                   help="the /opt/ml tree of a finished toolkit run (default: make bench-serve's)")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    p.add_argument("--json", type=Path, help="also write the results here")
    a = p.parse_args(argv)
    if not (a.tree / "model" / "model.json").is_file() or not (a.tree / "output/data/split.json").is_file():
        raise SystemExit(f"{a.tree} is not the tree of a finished training run (model/model.json, "
                         "output/data/split.json)")
    for v in a.variants:
        parse_variant(v)
    work = a.tree / "bench_quantize"
    work.mkdir(exist_ok=True)
    print(f"{len(a.variants)} variants on {a.tree / 'model'}, one process each; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for v in a.variants:
        with ctx.Pool(1) as pool:
            rows.append(pool.apply(measure_variant, (str(a.tree), v, str(work))))
        r, q = rows[-1], rows[-1]["section"]
        print(f"  {v}: " + (f"int8 accuracy {q['test']['int8']['accuracy'] * 100:.2f} % (fp32 "
                            f"{q['test']['fp32']['accuracy'] * 100:.2f} %), agreement "
                            f"{q['test']['top1_agreement'] * 100:.1f} %, {q['seconds']['total']:.0f} s"
                            if "test" in q else f"failed: {'; '.join(q['reasons'])}")
              + f", {r['peak_rss_mb']} MB, load average {r['load_average']}", flush=True)
    print()
    print(table(rows))
    print("\nΔ against the fp32 model measured in the same process; ms = median per image at batch 1, "
          "one ONNX Runtime thread, this host; served? = the run's own criteria (its int8-max-drop, RMSE "
          "+0.02, its false-match target at the card's thresholds)")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
