"""Fine-tune a bin item counter: the entry point SageMaker runs (SAGEMAKER_PROGRAM).

Shaped like torchvision's classification reference: ``train_one_epoch``,
``evaluate``, ``main``, a checkpoint dict with resume. Everything the server
must agree on (labels, preprocessing, model.json) comes from the bincounter
core; every path and setting comes from ``TrainingEnv``.
"""

from __future__ import annotations

import os

# smdebug's generated protobuf code needs the pure-Python protobuf runtime, and
# the choice is fixed by the first protobuf import (onnx makes one): set it first.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

import logging  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from bincounter.labels import CountRange  # noqa: E402
from bincounter.metadata import NoUsableDataError, Sample, scan_dataset  # noqa: E402
from bincounter.metrics import evaluate_counts  # noqa: E402
from bincounter.modelcard import MODEL_ONNX, MODEL_PTH, ModelCard  # noqa: E402
from bincounter.preprocess import PreprocessSpec  # noqa: E402
from bincounter.split import stratified_split, write_manifest  # noqa: E402
from bincounter.training import checkpoint  # noqa: E402
from bincounter.training.data import BinDataset, make_loader  # noqa: E402
from bincounter.training.environment import (HyperparameterError, TrainingEnv,  # noqa: E402
                                             failure_file)
from bincounter.training.export import export_onnx  # noqa: E402
from bincounter.training.metriclog import metric_line  # noqa: E402
from bincounter.training.models import PretrainedWeightsUnavailable, build_model  # noqa: E402
from bincounter.training.report import write_report  # noqa: E402

log = logging.getLogger("train")
VERSIONED = ("bincounter", "torch", "torchvision", "onnx", "onnxruntime", "numpy", "pillow")


def load_splits(env: TrainingEnv, count_range: CountRange) -> dict[str, list[Sample]]:
    """train / validation / test samples: given channels, else carved from training."""
    hp = env.hp
    if "training" not in env.channels:
        raise NoUsableDataError(f"no 'training' channel (channels found: {sorted(env.channels)})")
    train, _ = scan_dataset(env.channels["training"], count_range)
    given = {name: scan_dataset(env.channels[name], count_range)[0]
             for name in ("validation", "test") if name in env.channels}
    fv = 0.0 if "validation" in given else hp.val_fraction
    ft = 0.0 if "test" in given else hp.test_fraction
    labels = {s.id: s.count for s in train}
    split = stratified_split(labels, hp.seed, (1 - fv - ft, fv, ft))
    by_id = {s.id: s for s in train}
    splits = {"train": [by_id[i] for i in split["train"]],
              "validation": given.get("validation") or [by_id[i] for i in split["validation"]],
              "test": given.get("test") or [by_id[i] for i in split["test"]]}
    for name, samples in splits.items():
        if not samples:
            raise NoUsableDataError(f"the {name} split is empty: give more data or a {name} channel")
        labels.update({s.id: s.count for s in samples})
    write_manifest(env.output_data_dir / "split.json",
                   {k: [s.id for s in v] for k, v in splits.items()}, labels, hp.seed,
                   (1 - fv - ft, fv, ft), source=str(env.channels["training"]))
    log.info("split: %s", {k: len(v) for k, v in splits.items()})
    return splits


def _progress(loader, env: TrainingEnv, desc: str):
    if env.interactive:
        from tqdm import tqdm
        return tqdm(loader, desc=desc, leave=False)
    return loader


def train_one_epoch(model: nn.Module, criterion: nn.Module, optimizer, scheduler, loader,
                    device: torch.device, epoch: int, env: TrainingEnv, hook=None) -> dict:
    model.train()
    if hook is not None:
        from smdebug import modes
        hook.set_mode(modes.TRAIN)
    total_loss, correct, seen, t0 = 0.0, 0, 0, time.monotonic()
    for step, batch in enumerate(_progress(loader, env, f"epoch {epoch}"), start=1):
        if batch is None:
            continue
        x, y = batch[0].to(device), batch[1].to(device)
        logits = model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        if not env.interactive and step % env.hp.log_interval == 0:
            log.info("epoch %d step %d/%d loss %.4f %.1f img/s", epoch, step, len(loader),
                     total_loss / seen, seen / (time.monotonic() - t0))
    if seen == 0:
        raise NoUsableDataError("no training image could be decoded")
    return {"loss": total_loss / seen, "accuracy": correct / seen}


@torch.no_grad()
def evaluate(model: nn.Module, criterion: nn.Module, loader, device: torch.device,
             count_range: CountRange, hook=None) -> dict:
    model.eval()
    if hook is not None:
        from smdebug import modes
        hook.set_mode(modes.EVAL)
    total_loss, probs, targets = 0.0, [], []
    for batch in loader:
        if batch is None:
            continue
        x, y = batch[0].to(device), batch[1].to(device)
        logits = model(x)
        total_loss += criterion(logits, y).item() * len(y)
        probs.append(torch.softmax(logits, 1).cpu())
        targets.append(y.cpu())
    if not targets:
        raise NoUsableDataError("no evaluation image could be decoded")
    p, t = torch.cat(probs).numpy(), torch.cat(targets).numpy()
    ev = evaluate_counts(t + count_range.min_count, p.argmax(1) + count_range.min_count,
                         count_range.counts)
    return {"loss": total_loss / len(t), "accuracy": ev.accuracy, "rmse": ev.rmse, "evaluation": ev}


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def run(env: TrainingEnv) -> ModelCard:
    hp = env.hp
    torch.manual_seed(hp.seed)
    np.random.seed(hp.seed)
    count_range = CountRange(hp.min_count, hp.max_count)
    spec = PreprocessSpec(image_size=hp.image_size)
    device = torch.device("cuda" if env.num_gpus > 0 and torch.cuda.is_available() else "cpu")
    splits = load_splits(env, count_range)
    workers = hp.num_workers if hp.num_workers is not None else max(0, min(8, env.num_cpus - 1))
    loaders = {name: make_loader(BinDataset(samples, spec, count_range), hp.batch_size,
                                 shuffle=name == "train", num_workers=workers, seed=hp.seed)
               for name, samples in splits.items()}

    model = build_model(hp.arch, count_range.num_classes, hp.pretrained).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=hp.lr, momentum=hp.momentum,
                                weight_decay=hp.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=hp.epochs * max(1, len(loaders["train"])))
    start_epoch, history = 1, []
    resumed = (torch.load(hp.resume, map_location="cpu", weights_only=False), hp.resume) \
        if hp.resume else checkpoint.load_latest(env.checkpoint_dir)
    if resumed:
        state, path = resumed
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history = state["epoch"] + 1, state["history"]
        log.info("resumed from %s at epoch %d", path, start_epoch)

    hook = None
    if hp.debug_hook or (hp.debug_hook is None and env.debug_hook_config is not None):
        from bincounter.training.debugger import create_hook
        hook = create_hook(env.debug_hook_config, env.tensor_dir)
        hook.register_module(model)
        hook.register_loss(criterion)

    for epoch in range(start_epoch, hp.epochs + 1):
        tr = train_one_epoch(model, criterion, optimizer, scheduler, loaders["train"], device,
                             epoch, env, hook)
        va = evaluate(model, criterion, loaders["validation"], device, count_range, hook)
        print(metric_line(epoch, "train", tr["loss"], tr["accuracy"]), flush=True)
        print(metric_line(epoch, "validation", va["loss"], va["accuracy"], va["rmse"]), flush=True)
        history.append({"epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"],
                        "val_loss": va["loss"], "val_accuracy": va["accuracy"], "val_rmse": va["rmse"]})
        checkpoint.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "scheduler": scheduler.state_dict(), "epoch": epoch,
                                    "history": history, "args": hp.to_dict()},
                                   env.checkpoint_dir, step=epoch * len(loaders["train"]))
        checkpoint.prune(env.checkpoint_dir)

    te = evaluate(model, criterion, loaders["test"], device, count_range, hook)
    last_epoch = history[-1]["epoch"] if history else hp.epochs
    print(metric_line(last_epoch, "test", te["loss"], te["accuracy"], te["rmse"]), flush=True)
    return write_outputs(env, model, spec, count_range, loaders["test"], history, te, splits)


def write_outputs(env: TrainingEnv, model: nn.Module, spec: PreprocessSpec, count_range: CountRange,
                  test_loader, history: list[dict], test: dict, splits: dict) -> ModelCard:
    hp = env.hp
    env.model_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    torch.save(state, env.model_dir / MODEL_PTH)
    # export a fresh copy: the trained instance carries smdebug's forward hooks
    clean = build_model(hp.arch, count_range.num_classes, pretrained=False)
    clean.load_state_dict(state)
    batch = next(b for b in test_loader if b is not None)[0][:8]
    parity = export_onnx(clean, batch, env.model_dir / MODEL_ONNX)
    ev = test["evaluation"]
    card = ModelCard(
        classes=count_range.counts, preprocess=spec, arch=hp.arch,
        metrics={"test": {"accuracy": ev.accuracy, "rmse": ev.rmse, "loss": test["loss"], "n": ev.n},
                 "validation": {k: history[-1][k] for k in ("val_loss", "val_accuracy", "val_rmse")}
                 if history else {}},
        versions=_versions(),
        training={"hyperparameters": hp.to_dict(), "split_sizes": {k: len(v) for k, v in splits.items()},
                  "onnx_parity_max_abs_diff": parity})
    card.write(env.model_dir)
    report = write_report(env.output_data_dir, ev, history, {"model": card.to_dict()})
    log.info("test accuracy %.2f %%, RMSE %.3f; report %s\n%s", ev.accuracy * 100, ev.rmse,
             report, ev.table())
    return card


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        env = TrainingEnv.resolve(argv, interactive=sys.stderr.isatty())
        run(env)
        return 0
    except (HyperparameterError, NoUsableDataError, PretrainedWeightsUnavailable, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.error("training failed: %s", reason)
    except Exception as exc:  # our bug or the platform's: keep the traceback in the log
        reason = f"{type(exc).__name__}: {exc}"
        log.exception("training failed unexpectedly")
    path = failure_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reason[:1024], encoding="utf-8")
    return 1


if __name__ == "__main__":
    sys.exit(main())
