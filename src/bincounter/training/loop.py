"""The train and evaluation loops: resumable mid-epoch, data parallel, stoppable.

``Trainer`` is the one owner of the checkpoint dict (``save`` / ``restore``).
A checkpoint records where to continue: ``epoch`` and ``step`` (batches done
in that epoch) with the epoch's running sums, so a resumed run replays the
same batches (``EpochSampler``) and prints the same metric lines as an
uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from bincounter.labels import CountRange
from bincounter.metadata import NoUsableDataError
from bincounter.metrics import evaluate_counts
from bincounter.training import checkpoint, distributed
from bincounter.training.distributed import World
from bincounter.training.metriclog import metric_line
from bincounter.training.profiling import StepProfiler, StepTimer
from bincounter.training.recipe import Head
from bincounter.training.spot import Interrupted, StopFlag

log = logging.getLogger(__name__)


@dataclass
class Trainer:
    model: nn.Module              # DDP-wrapped on several hosts
    head: Head
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    world: World
    stop: StopFlag
    checkpoint_dir: Path
    checkpoint_steps: int
    log_interval: int
    args: dict
    hook: object = None
    # an exponential moving average of the weights: what is evaluated and exported when set
    ema: torch.optim.swa_utils.AveragedModel | None = None
    timer: StepTimer = field(default_factory=StepTimer)
    profiler: StepProfiler | None = None
    history: list[dict] = field(default_factory=list)
    # where fit() starts: (epoch, batches done in it, that epoch's running sums)
    position: tuple[int, int, list[float]] = (1, 0, [0.0, 0.0, 0.0])

    @property
    def net(self) -> nn.Module:
        return distributed.unwrap(self.model)

    @property
    def served(self) -> nn.Module:
        """The weights that are evaluated and exported: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.net

    def save(self, epoch: int, step: int, steps_per_epoch: int, sums: list[float]) -> None:
        """Rank 0 writes; the state says where to continue (epoch, batches done)."""
        if not self.world.is_main:
            return
        state = {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                 "epoch": epoch, "step": step, "epoch_sums": list(sums), "history": list(self.history),
                 "rng": checkpoint.rng_states(), "args": self.args, "steps_per_epoch": steps_per_epoch}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        path = checkpoint.save_checkpoint(state, self.checkpoint_dir,
                                          step=(epoch - 1) * steps_per_epoch + step)
        checkpoint.prune(self.checkpoint_dir)
        log.info("checkpoint %s (epoch %d, %d/%d steps done)", path.name, epoch, step, steps_per_epoch)

    def restore(self, state: dict) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        checkpoint.restore_rng_states(state["rng"])
        self.history = list(state["history"])
        self.position = (state["epoch"], state["step"], list(state["epoch_sums"]))

    def resume(self, steps_per_epoch: int, explicit: str = "") -> None:
        """Rank 0 loads ``explicit`` or the newest checkpoint that loads; every rank restores it."""
        found = None
        if self.world.is_main:
            found = ((torch.load(explicit, map_location="cpu", weights_only=False), explicit)
                     if explicit else checkpoint.load_latest(self.checkpoint_dir))
        state = distributed.broadcast(found[0] if found else None, self.world)
        if state is None:
            return
        self.restore(state)
        if state.get("steps_per_epoch", steps_per_epoch) != steps_per_epoch:
            log.warning("the checkpoint had %s steps per epoch, this run has %d: resuming at "
                        "the saved step anyway", state.get("steps_per_epoch"), steps_per_epoch)
        log.info("resumed from %s at epoch %d step %d/%d", found[1] if found else "rank 0's checkpoint",
                 state["epoch"], state["step"], steps_per_epoch)

    def fit(self, loaders: dict, samplers: dict, steps: int, epochs: int,
            count_range: CountRange) -> tuple[dict, dict]:
        """Train from ``position`` to the end of ``epochs``, checkpointing each epoch
        and printing the metric lines; returns the final model's validation and test results."""
        start_epoch, step, sums = self.position
        va = None
        for epoch in range(start_epoch, epochs + 1):
            tr = self.train_one_epoch(loaders["train"], samplers["train"], epoch, step, steps, sums)
            done = list(sums)
            va = self.evaluate(loaders["validation"], count_range,
                               on_stop=lambda: self.save(epoch, steps, steps, done))
            if self.world.is_main:
                print(metric_line(epoch, "train", tr["loss"], tr["accuracy"]), flush=True)
                print(metric_line(epoch, "validation", va["loss"], va["accuracy"], va["rmse"]), flush=True)
            self.history.append({"epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"],
                                 "val_loss": va["loss"], "val_accuracy": va["accuracy"],
                                 "val_rmse": va["rmse"]})
            step, sums = 0, [0.0, 0.0, 0.0]
            self.save(epoch + 1, 0, steps, sums)
        if self.profiler is not None:
            self.profiler.close()
        if va is None:  # resumed after the last epoch had finished
            va = self.evaluate(loaders["validation"], count_range)
        test = self.evaluate(loaders["test"], count_range)
        if self.world.is_main:
            print(metric_line(epochs, "test", test["loss"], test["accuracy"], test["rmse"]), flush=True)
        return va, test

    def stop_requested(self) -> bool:
        # every rank must stop at the same step, or the others hang in all-reduce
        flag = 1.0 if self.stop.requested else 0.0
        return distributed.all_sum([flag], self.world)[0] > 0 if self.world.active else flag > 0

    def train_one_epoch(self, loader, sampler, epoch: int, start_step: int, steps: int,
                        sums: list[float]) -> dict:
        """Run batches ``start_step..steps`` of ``epoch``; ``sums`` = [loss*n, correct, n]."""
        self.model.train()
        if self.hook is not None:
            from smdebug import modes
            self.hook.set_mode(modes.TRAIN)
        sampler.set_epoch(epoch, start_batch=start_step, num_batches=steps)
        use_amp = self.device.type == "cuda" and self.scaler.is_enabled()
        step, t0, seen0 = start_step, time.monotonic(), sums[2]
        self.timer.restart()
        for batch in loader:
            self.timer.batch_arrived()
            step += 1
            if batch is not None:
                x = batch[0].to(self.device, non_blocking=True)
                y = batch[1].to(self.device, non_blocking=True)
                with torch.autocast(self.device.type, enabled=use_amp):
                    out = self.model(x)
                    loss = self.head.criterion(out.float(), y)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                if self.ema is not None:
                    self.ema.update_parameters(self.net)
                pred = self.head.predict(out.detach().float())
                sums[0] += loss.item() * len(y)
                sums[1] += int((pred == y).sum())
                sums[2] += len(y)
            self.scheduler.step()
            self.timer.step_done(self.device)
            if self.profiler is not None:
                self.profiler.step()
            if step % self.log_interval == 0:
                rate = (sums[2] - seen0) / max(1e-9, time.monotonic() - t0)
                log.info("epoch %d step %d/%d loss %.4f %.1f img/s", epoch, step, steps,
                         sums[0] / max(1, sums[2]), rate)
            if self.stop_requested():
                self.save(epoch, step, steps, sums)
                raise Interrupted(f"stopped by {self.stop.signal_name or 'a peer'} at epoch {epoch} "
                                  f"step {step}/{steps}; checkpoint saved to {self.checkpoint_dir}")
            if self.checkpoint_steps and step % self.checkpoint_steps == 0 and step < steps:
                self.save(epoch, step, steps, sums)
        total = distributed.all_sum(list(sums), self.world)
        if total[2] == 0:
            raise NoUsableDataError("no training image could be decoded")
        return {"loss": total[0] / total[2], "accuracy": total[1] / total[2]}

    @torch.no_grad()
    def evaluate(self, loader, count_range: CountRange,
                 on_stop: Callable[[], None] | None = None) -> dict:
        """Metrics over every rank's share of ``loader``'s split, with the raw ``outputs``
        and ``targets`` (indices of the served classes) that calibration and the verdicts
        are fitted on."""
        net = self.served.eval()  # unwrapped: DDP's forward would sync buffers per batch
        if self.hook is not None:
            from smdebug import modes
            self.hook.set_mode(modes.EVAL)
        loss_sum, outputs, targets = 0.0, [], []
        for batch in loader:
            if self.stop.requested and not self.world.active:
                if on_stop is not None:
                    on_stop()
                raise Interrupted(f"stopped by {self.stop.signal_name} during evaluation; "
                                  f"checkpoint saved to {self.checkpoint_dir}")
            if batch is None:
                continue
            x, y = batch[0].to(self.device), batch[1].to(self.device)
            out = net(x).float()
            loss_sum += self.head.criterion(out, y).item() * len(y)
            outputs.append(out.cpu().numpy())
            targets.append(y.cpu().numpy())
        parts = distributed.gather((loss_sum, outputs, targets), self.world)
        loss_sum = sum(p[0] for p in parts)
        outputs = [a for p in parts for a in p[1]]
        targets = [a for p in parts for a in p[2]]
        if not targets:
            raise NoUsableDataError("no evaluation image could be decoded")
        z, t = np.concatenate(outputs), np.concatenate(targets) - self.head.served.start
        p = self.head.probabilities(torch.from_numpy(z)).numpy()
        counts = np.asarray(count_range.counts)
        ev = evaluate_counts(counts[t], counts[p.argmax(1)], count_range.counts)
        return {"loss": loss_sum / len(t), "accuracy": ev.accuracy, "rmse": ev.rmse, "evaluation": ev,
                "outputs": z, "targets": t}
