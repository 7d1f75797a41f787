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

import contextlib  # noqa: E402
import hashlib  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bincounter.labels import CountRange  # noqa: E402
from bincounter.metadata import NoUsableDataError, Sample, scan_dataset  # noqa: E402
from bincounter.modelcard import ModelCard  # noqa: E402
from bincounter.preprocess import PreprocessSpec  # noqa: E402
from bincounter.split import stratified_split, write_manifest  # noqa: E402
from bincounter.training import checkpoint, distributed, workers  # noqa: E402
from bincounter.training.data import BinDataset, EpochSampler, make_loader  # noqa: E402
from bincounter.training.distributed import World  # noqa: E402
from bincounter.training.environment import (HyperparameterError, TrainingEnv,  # noqa: E402
                                             failure_file)
from bincounter.training.loop import Trainer  # noqa: E402
from bincounter.training.metriclog import metric_line  # noqa: E402
from bincounter.training.models import PretrainedWeightsUnavailable, build_model  # noqa: E402
from bincounter.training.outputs import write_outputs  # noqa: E402
from bincounter.training.profiling import StepProfiler, SystemMonitor  # noqa: E402
from bincounter.training.recipe import Head, augment_bin, warmup_cosine  # noqa: E402
from bincounter.training.spot import Interrupted, StopFlag  # noqa: E402

log = logging.getLogger("train")
SHARDED = "ShardedByS3Key"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# several processes share the host's stdout: say which one wrote each line
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
EXPECTED_FAILURES = (HyperparameterError, NoUsableDataError, PretrainedWeightsUnavailable, ValueError)


def load_splits(env: TrainingEnv, count_range: CountRange, write: bool) -> dict[str, list[Sample]]:
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
    if write:
        write_manifest(env.output_data_dir / "split.json",
                       {k: [s.id for s in v] for k, v in splits.items()}, labels, hp.seed,
                       (1 - fv - ft, fv, ft), source=str(env.channels["training"]))
    log.info("split: %s", {k: len(v) for k, v in splits.items()})
    return splits


def make_loaders(env: TrainingEnv, splits: dict, spec: PreprocessSpec, count_range: CountRange,
                 world: World, device: torch.device) -> tuple[dict, dict]:
    """Loaders fed by ``EpochSampler``s: the train one balanced/augmented as asked
    and sharded across hosts unless the channel is already sharded by S3 key."""
    hp = env.hp
    # the host's CPUs are shared by its training processes
    loader_workers = hp.num_workers if hp.num_workers is not None else max(0, min(8, env.cpus_per_process - 1))
    loaders, samplers = {}, {}
    for name, samples in splits.items():
        pre_sharded = env.distribution.get(
            "training" if name == "train" or name not in env.channels else name) == SHARDED
        rank, size = (0, 1) if pre_sharded else (world.rank, world.size)
        train = name == "train"
        sampler = EpochSampler([count_range.to_index(s.count) for s in samples], hp.batch_size,
                               hp.seed, shuffle=train, balanced=train and hp.balanced_sampling,
                               rank=rank, world=size, pad=train)
        dataset = BinDataset(samples, spec, count_range, augment=augment_bin if train and hp.augment else None)
        samplers[name] = sampler
        loaders[name] = make_loader(dataset, hp.batch_size, shuffle=False, num_workers=loader_workers,
                                    seed=hp.seed, sampler=sampler, pin_memory=device.type == "cuda")
    return loaders, samplers


def weights_digest(model: torch.nn.Module) -> str:
    """A fingerprint of the parameters: equal on every rank when DDP averaged the gradients."""
    h = hashlib.sha256()
    for name, p in sorted(distributed.unwrap(model).named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def run(env: TrainingEnv, stop: StopFlag, local_rank: int = 0) -> ModelCard | None:
    hp = env.hp
    torch.manual_seed(hp.seed)
    np.random.seed(hp.seed)
    random.seed(hp.seed)
    count_range = CountRange(hp.min_count, hp.max_count)
    spec = PreprocessSpec(image_size=hp.image_size)
    world = distributed.plan(env.host_index, len(env.hosts), env.processes_per_host, local_rank)
    device = world.device(cuda=env.num_gpus > 0 and torch.cuda.is_available())
    if env.processes_per_host > 1:
        # each process would otherwise start a thread per core: N processes on a
        # CPU host split its cores (cpu_count // N threads each) instead of
        # oversubscribing them
        torch.set_num_threads(env.cpus_per_process)
        log.info("local rank %d of %d on this host: %d torch threads", local_rank,
                 env.processes_per_host, env.cpus_per_process)
    distributed.init(env, world, device)
    # no orderly shutdown after a failure: it is reported first, then the process
    # ends and its connections close, so the errors that causes in the peers come
    # later and are not taken for the cause (workers.supervise orders by time)
    card = _train(env, stop, world, device, count_range, spec)
    distributed.shutdown(world)
    return card


def _train(env: TrainingEnv, stop: StopFlag, world: World, device: torch.device,
           count_range: CountRange, spec: PreprocessSpec) -> ModelCard | None:
    hp = env.hp
    splits = load_splits(env, count_range, write=world.is_main)
    loaders, samplers = make_loaders(env, splits, spec, count_range, world, device)
    steps = distributed.all_min(samplers["train"].full_batches(), world)

    head = Head(hp.head, hp.label_smoothing)
    model = head.replace(build_model(hp.arch, count_range.num_classes, hp.pretrained),
                         count_range.num_classes).to(device)
    hook = None
    if world.is_main and (hp.debug_hook or (hp.debug_hook is None and env.debug_hook_config is not None)):
        from bincounter.training.debugger import create_hook
        hook = create_hook(env.debug_hook_config, env.tensor_dir)
        hook.register_module(model)
        hook.register_loss(head.criterion)
    optimizer = torch.optim.SGD(model.parameters(), lr=hp.lr, momentum=hp.momentum,
                                weight_decay=hp.weight_decay)
    trainer = Trainer(
        model=distributed.wrap(model, world, device), head=head, optimizer=optimizer,
        scheduler=warmup_cosine(optimizer, hp.epochs * steps, round(hp.warmup_epochs * steps)),
        scaler=torch.amp.GradScaler("cuda", enabled=hp.amp and device.type == "cuda"),
        device=device, world=world, stop=stop, checkpoint_dir=env.checkpoint_dir,
        checkpoint_steps=hp.checkpoint_steps, log_interval=hp.log_interval, args=hp.to_dict(),
        hook=hook, profiler=StepProfiler(env.output_data_dir, hp.profile_steps, device)
        if world.is_main else None)

    start_epoch, step, sums = 1, 0, [0.0, 0.0, 0.0]
    found = None
    if world.is_main:
        found = ((torch.load(hp.resume, map_location="cpu", weights_only=False), hp.resume)
                 if hp.resume else checkpoint.load_latest(env.checkpoint_dir))
    state = distributed.broadcast(found[0] if found else None, world)
    if state is not None:
        trainer.restore(state)
        start_epoch, step, sums = state["epoch"], state["step"], list(state["epoch_sums"])
        if state.get("steps_per_epoch", steps) != steps:
            log.warning("the checkpoint had %s steps per epoch, this run has %d: resuming at "
                        "the saved step anyway", state.get("steps_per_epoch"), steps)
        log.info("resumed from %s at epoch %d step %d/%d", found[1] if found else "rank 0's checkpoint",
                 start_epoch, step, steps)

    monitor = SystemMonitor(env.output_data_dir / "system_metrics.jsonl") if world.is_main else None
    with monitor or contextlib.nullcontext():
        for epoch in range(start_epoch, hp.epochs + 1):
            tr = trainer.train_one_epoch(loaders["train"], samplers["train"], epoch, step, steps, sums)
            done = list(sums)
            va = trainer.evaluate(loaders["validation"], count_range,
                                  on_stop=lambda: trainer.save(epoch, steps, steps, done))
            if world.is_main:
                print(metric_line(epoch, "train", tr["loss"], tr["accuracy"]), flush=True)
                print(metric_line(epoch, "validation", va["loss"], va["accuracy"], va["rmse"]), flush=True)
            trainer.history.append({"epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"],
                                    "val_loss": va["loss"], "val_accuracy": va["accuracy"],
                                    "val_rmse": va["rmse"]})
            step, sums = 0, [0.0, 0.0, 0.0]
            trainer.save(epoch + 1, 0, steps, sums)
        if trainer.profiler is not None:
            trainer.profiler.close()
        te = trainer.evaluate(loaders["test"], count_range)
    log.info("final weights sha256 %s (rank %d of %d)", weights_digest(trainer.model), world.rank, world.size)
    if not world.is_main:
        return None
    print(metric_line(hp.epochs, "test", te["loss"], te["accuracy"], te["rmse"]), flush=True)
    return finish(env, trainer, hook, spec, count_range, loaders, te, splits, monitor)


def finish(env: TrainingEnv, trainer: Trainer, hook, spec: PreprocessSpec, count_range: CountRange,
           loaders: dict, te: dict, splits: dict, monitor: SystemMonitor) -> ModelCard:
    """Rank 0: profile and rule verdicts into the report, then the model files."""
    timing = trainer.timer.summary()
    profile = {"step_timing": timing, "system": monitor.summary(),
               "top_ops": trainer.profiler.top_ops if trainer.profiler else []}
    log.info("data-wait share of step time: %.1f %% (%.1f s waiting, %.1f s computing, %d steps)",
             timing["data_wait_share"] * 100, timing["data_wait_s"], timing["compute_s"], timing["steps"])
    sections = ["## Throughput", "",
                f"Data-wait share of step time: {timing['data_wait_share'] * 100:.1f} % "
                f"({timing['data_wait_s']:.1f} s waiting, {timing['compute_s']:.1f} s computing, "
                f"{timing['steps']} steps).", "", _system_line(profile["system"]), ""]
    if profile["top_ops"]:
        sections += ["| op | calls | self CPU ms | share |", "|---|---|---|---|"]
        sections += [f"| {o['op']} | {o['calls']} | {o['self_cpu_ms']} | {o['share'] * 100:.1f} % |"
                     for o in profile["top_ops"]] + [""]
    rules = []
    if hook is not None:
        hook.close()
        if env.hp.rules:
            from bincounter.training.rules import evaluate_rules, rules_markdown
            rules = evaluate_rules(str(hook.out_dir))
            sections += rules_markdown(rules)
    return write_outputs(env, trainer.net, trainer.head, spec, count_range, loaders["test"],
                         trainer.history, te, splits, {"profile": profile, "rules": rules}, sections)


def _system_line(system: dict) -> str:
    if not system.get("samples"):
        return "System monitor: no samples (run shorter than one interval)."
    line = (f"System monitor ({system['samples']} samples every {system['interval_s']} s): CPU mean "
            f"{system['cpu_percent_mean']} %, max {system['cpu_percent_max']} %; process RSS max "
            f"{system['rss_mb_max']} MB; memory in use max {system['mem_used_mb_max']} MB")
    return line + (f"; GPU memory max {system['gpu_mem_mb_max']} MB." if "gpu_mem_mb_max" in system else ".")


def failure(exc: Exception) -> tuple[int, str]:
    """Exit code and ``output/failure`` reason for ``exc``; call in its ``except``."""
    if isinstance(exc, Interrupted):
        log.error("training interrupted: %s", exc)
        return 143, f"Interrupted: {exc}"  # 128 + SIGTERM, as if killed, but saved
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, EXPECTED_FAILURES):
        log.error("training failed: %s", reason)
    else:  # our bug or the platform's: keep the traceback in the log
        log.exception("training failed unexpectedly")
    return 1, reason


def worker(local_rank: int, stop: StopFlag, env: TrainingEnv) -> tuple[int, str]:
    """One of several training processes on this host (``workers.supervise``)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format=WORKER_LOG_FORMAT)
    try:
        run(env, stop, local_rank)
        return 0, ""
    except Exception as exc:
        return failure(exc)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format=LOG_FORMAT)
    stop = StopFlag().install()
    try:
        env = TrainingEnv.resolve(argv, interactive=sys.stderr.isatty())
        if env.processes_per_host > 1:
            code, reason = workers.supervise(worker, env.processes_per_host, (env,))
        else:
            run(env, stop)
            code, reason = 0, ""
    except Exception as exc:
        code, reason = failure(exc)
    if code == 0:
        return 0
    path = failure_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reason[:1024], encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
