"""A training run, end to end: what ``train.py`` hands its ``TrainingEnv`` to.

``main`` resolves the environment, runs one process (or supervises one per
local rank), and turns any failure into an exit code and ``output/failure``.
``run`` is one rank's run: seeds, world, splits and loaders, the model and
its head, the loop with resume, then on rank 0 the model files and report.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from typing import Callable

import numpy as np
import torch

from bincounter.labels import CountRange
from bincounter.modelcard import ModelCard
from bincounter.preprocess import PreprocessSpec
from bincounter.training import distributed, failures, workers
from bincounter.training.data import load_splits, make_loaders
from bincounter.training.relabel import Provenance
from bincounter.training.distributed import World
from bincounter.training.environment import TrainingEnv, write_failure
from bincounter.training.loop import Trainer
from bincounter.training.models import build_model
from bincounter.training.outputs import write_outputs
from bincounter.training.profiling import StepProfiler, SystemMonitor
from bincounter.training.recipe import Head, warmup_cosine
from bincounter.training.report import profile_section
from bincounter.training.spot import StopFlag

log = logging.getLogger("train")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# several processes share the host's stdout: say which one wrote each line
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


def main(resolve: Callable[[], TrainingEnv]) -> int:
    """The whole run: 0, or the failure's exit code with its reason in ``output/failure``."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format=LOG_FORMAT)
    stop = StopFlag().install()
    try:
        env = resolve()
        if env.processes_per_host > 1:
            code, reason = workers.supervise(worker, env.processes_per_host, (env,))
        else:
            run(env, stop)
            code, reason = 0, ""
    except Exception as exc:
        code, reason = failures.classify(exc)
    if code != 0:
        write_failure(reason)
    return code


def worker(local_rank: int, stop: StopFlag, env: TrainingEnv) -> tuple[int, str]:
    """One of several training processes on this host (``workers.supervise``)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format=WORKER_LOG_FORMAT)
    try:
        run(env, stop, local_rank)
        return 0, ""
    except Exception as exc:
        return failures.classify(exc)


def run(env: TrainingEnv, stop: StopFlag, local_rank: int = 0) -> ModelCard | None:
    """One rank's run; rank 0 returns the model card it wrote."""
    hp = env.hp
    torch.manual_seed(hp.seed)
    np.random.seed(hp.seed)
    random.seed(hp.seed)
    world = distributed.plan(env.host_index, len(env.hosts), env.processes_per_host, local_rank)
    device = world.device(cuda=env.num_gpus > 0 and torch.cuda.is_available())
    if env.processes_per_host > 1:
        # each process would otherwise start a thread per core: N processes on a
        # CPU host split its cores instead of oversubscribing them
        torch.set_num_threads(env.cpus_per_process)
        log.info("local rank %d of %d on this host: %d torch threads", local_rank,
                 env.processes_per_host, env.cpus_per_process)
    distributed.init(env, world, device)
    # no orderly shutdown after a failure: it is reported first, then the process
    # ends and its connections close, so the errors that causes in the peers come
    # later and are not taken for the cause (workers.supervise orders by time)
    card = train(env, stop, world, device)
    distributed.shutdown(world)
    return card


def train(env: TrainingEnv, stop: StopFlag, world: World, device: torch.device) -> ModelCard | None:
    hp = env.hp
    count_range = CountRange(hp.min_count, hp.max_count)
    spec = PreprocessSpec(image_size=hp.image_size)
    head = Head(hp.head, hp.label_smoothing, count_range, outside=hp.outside_counts == "classes")
    splits, provenance = load_splits(env, count_range, write=world.is_main,
                                     outside=head.outputs > count_range.num_classes)
    loaders, samplers = make_loaders(env, splits, spec, head, world, pin_memory=device.type == "cuda")
    steps = distributed.all_min(samplers["train"].full_batches(), world)

    model = head.replace(build_model(hp.arch, head.outputs, hp.pretrained)).to(device)
    # copied before the debugger hook is attached, so the average carries none of its hooks
    ema = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(hp.ema_decay),
        use_buffers=True) if hp.ema_decay > 0 else None
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
        hook=hook, ema=ema, profiler=StepProfiler(env.output_data_dir, hp.profile_steps, device)
        if world.is_main else None)
    trainer.resume(steps, hp.resume)

    monitor = SystemMonitor(env.output_data_dir / "system_metrics.jsonl") if world.is_main else None
    with monitor or contextlib.nullcontext():
        validation, test = trainer.fit(loaders, samplers, steps, hp.epochs, count_range)
        # the split the temperature and thresholds are fitted on: the calibration channel when
        # given (every rank evaluates its share; the results are gathered), else validation
        fit_split = "calibration" if "calibration" in loaders else "validation"
        fit_on = trainer.evaluate(loaders["calibration"], count_range) if fit_split == "calibration" else validation
    log.info("final weights sha256 %s (rank %d of %d)", distributed.weights_digest(trainer.model),
             world.rank, world.size)
    if not world.is_main:
        return None
    return finish(env, trainer, hook, spec, count_range, loaders, (fit_split, fit_on), test, splits, monitor,
                  provenance)


def finish(env: TrainingEnv, trainer: Trainer, hook, spec: PreprocessSpec, count_range: CountRange,
           loaders: dict, fit: tuple[str, dict], test: dict, splits: dict, monitor: SystemMonitor,
           provenance: Provenance) -> ModelCard:
    """Rank 0: profile and rule verdicts into the report, then the model files."""
    timing = trainer.timer.summary()
    profile = {"step_timing": timing, "system": monitor.summary(),
               "top_ops": trainer.profiler.top_ops if trainer.profiler else []}
    log.info("data-wait share of step time: %.1f %% (%.1f s waiting, %.1f s computing, %d steps)",
             timing["data_wait_share"] * 100, timing["data_wait_s"], timing["compute_s"], timing["steps"])
    sections = profile_section(profile)
    rules = []
    if hook is not None:
        hook.close()
        if env.hp.rules:
            from bincounter.training.rules import evaluate_rules, rules_markdown
            rules = evaluate_rules(str(hook.out_dir))
            sections += rules_markdown(rules)
    return write_outputs(env, trainer.served, trainer.head, spec, count_range, loaders["test"],
                         trainer.history, fit, test, splits, {"profile": profile, "rules": rules}, sections,
                         provenance.to_dict())
