"""Debugger rules we evaluate ourselves on a saved smdebug trial (local or S3).

SageMaker's managed rule containers are closed to new customers, and the
smdebug 1.0.34 wheel ships only the rule framework (``smdebug.rules.Rule``,
``invoke_rule``), not the built-in rules themselves. So the four we need are
written here on that framework, after the built-in rules' documented
definitions and default parameters; differences are noted per rule.
Importing this module imports neither smdebug nor torch.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from statistics import mean

log = logging.getLogger(__name__)

RULES = ("LossNotDecreasing", "VanishingGradient", "PoorWeightInitialization", "Overfit")


def evaluate_rules(trial_path: str, rules: tuple[str, ...] = RULES) -> list[dict]:
    """Each rule's verdict on the trial at ``trial_path`` (a folder or s3:// URI):
    ``{"rule", "status": "NoIssuesFound" | "IssuesFound" | "Error", "violations",
    "steps_checked", "details", "parameters"}``."""
    # the package chose the runtime on import (bincounter/training/__init__.py),
    # unless protobuf was loaded before it: say so instead of failing inside smdebug
    from google.protobuf.internal import api_implementation

    if api_implementation.Type() != "python":
        raise RuntimeError(
            "smdebug reads trials only with the pure-Python protobuf runtime, and protobuf was "
            f"already loaded with {api_implementation.Type()!r}: set "
            "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python before anything imports protobuf (onnx does)")
    from smdebug.trials import create_trial

    if not str(trial_path).startswith("s3://") and not Path(trial_path).is_dir():
        raise FileNotFoundError(f"no smdebug trial at {trial_path}: the folder does not exist")
    trial = create_trial(str(trial_path))
    factories = _rule_classes()
    results = []
    for name in rules:
        rule = factories[name](trial)
        try:
            rule.run()
            status = "IssuesFound" if rule.violations else "NoIssuesFound"
        except Exception as exc:  # one unreadable tensor must not hide the other verdicts
            log.warning("rule %s could not be evaluated on %s: %s", name, trial_path, exc)
            status, rule.details = "Error", [f"{type(exc).__name__}: {exc}"]
        results.append({"rule": name, "status": status, "violations": rule.violations,
                        "steps_checked": rule.checked, "details": rule.details[:5],
                        "parameters": rule.parameters})
        log.info("rule %s: %s (%d violations in %d checks)", name, status, rule.violations, rule.checked)
    return results


def rules_markdown(results: list[dict]) -> list[str]:
    lines = ["## Debugger rules", "", "| rule | verdict | violations | checks | first detail |",
             "|---|---|---|---|---|"]
    for r in results:
        detail = r["details"][0] if r["details"] else ""
        lines.append(f"| {r['rule']} | {r['status']} | {r['violations']} | {r['steps_checked']} | {detail} |")
    return lines + [""]


def _rule_classes() -> dict:
    """The rule classes, built on first use so that importing stays smdebug-free."""
    import numpy as np
    from smdebug.core.modes import ModeKeys
    from smdebug.rules import Rule, invoke_rule

    class _Base(Rule):
        parameters: dict = {}

        def __init__(self, trial):
            super().__init__(trial, action_str="")
            self.violations, self.checked, self.details = 0, 0, []

        def violation(self, text: str) -> bool:
            self.violations += 1
            self.details.append(text)
            return True

        def names(self, collection: str) -> list[str]:
            return self.base_trial.tensor_names(collection=collection)

        def values(self, name: str, mode) -> list[tuple[int, float | np.ndarray]]:
            t = self.base_trial.tensor(name)
            return [(s, t.value(s, mode=mode)) for s in t.steps(mode=mode)]

        def run(self) -> None:
            steps = self.base_trial.steps()
            invoke_rule(self, start_step=steps[0] if steps else 0,
                        end_step=(steps[-1] + 1) if steps else 0)

    class LossNotDecreasing(_Base):
        """Train loss averaged over windows of ``num_steps`` saved steps must fall by
        ``diff_percent`` from one window to the next; a non-finite loss is a violation.
        (The built-in compares two single steps; mini-batch noise would trip that on
        healthy runs, so windows are compared.) Checked once, on the last step."""
        parameters = {"num_steps": 10, "diff_percent": 0.0, "mode": "TRAIN"}

        def invoke_at_step(self, step):
            if step != self.base_trial.steps()[-1]:
                return False
            n, frac = self.parameters["num_steps"], self.parameters["diff_percent"] / 100
            found = False
            for name in self.names("losses"):
                losses = [float(v) for _, v in self.values(name, ModeKeys.TRAIN)]
                if any(not math.isfinite(v) for v in losses):
                    found = self.violation(f"{name}: non-finite loss")
                    continue
                windows = [mean(losses[i:i + n]) for i in range(0, len(losses) - n + 1, n)]
                for i in range(1, len(windows)):
                    self.checked += 1
                    if windows[i] > windows[i - 1] * (1 - frac):
                        found = self.violation(f"{name}: mean {windows[i]:.4g} over steps "
                                               f"{i * n}-{i * n + n - 1} >= {windows[i - 1]:.4g} before")
            return found

    class VanishingGradient(_Base):
        """Mean |gradient| of a layer below ``threshold`` at a saved step."""
        parameters = {"threshold": 1e-7}

        def invoke_at_step(self, step):
            found = False
            for name in self.names("gradients"):
                t = self.base_trial.tensor(name)
                if step not in t.steps():
                    continue
                self.checked += 1
                m = float(np.abs(t.value(step)).mean())
                if not m >= self.parameters["threshold"]:
                    found = self.violation(f"step {step} {name}: mean |g| = {m:.3g}")
            return found

    class PoorWeightInitialization(_Base):
        """Over the first ``steps`` saved train steps: the gradient distribution's
        5th-95th percentile spread below ``distribution_range``, or the loss not
        improving on its first value within ``patience`` steps. (The built-in also
        compares ReLU-input variances across layers; our hook saves no ReLU inputs.)"""
        parameters = {"distribution_range": 0.001, "patience": 5, "steps": 10}

        def invoke_at_step(self, step):
            train_steps = self.base_trial.steps(mode=ModeKeys.TRAIN)[: self.parameters["steps"]]
            if not train_steps or step != self.base_trial.global_step(ModeKeys.TRAIN, train_steps[-1]):
                return False
            found = False
            for mode_step in train_steps:
                grads = []
                for name in self.names("gradients"):
                    t = self.base_trial.tensor(name)
                    if mode_step in t.steps(mode=ModeKeys.TRAIN):
                        grads.append(np.ravel(t.value(mode_step, mode=ModeKeys.TRAIN)))
                if not grads:
                    continue
                self.checked += 1
                g = np.concatenate(grads)
                spread = float(np.percentile(g, 95) - np.percentile(g, 5))
                if spread < self.parameters["distribution_range"]:
                    found = self.violation(f"train step {mode_step}: gradient 5-95 % spread {spread:.3g}")
            for name in self.names("losses"):
                losses = [float(v) for _, v in self.values(name, ModeKeys.TRAIN)][: self.parameters["steps"]]
                p = self.parameters["patience"]
                if len(losses) > p:
                    self.checked += 1
                    if not min(losses[1:p + 1]) < losses[0]:
                        found = self.violation(f"{name}: no improvement on {losses[0]:.4g} "
                                               f"within {p} steps")
            return found

    class Overfit(_Base):
        """(mean validation loss - mean train loss) / mean train loss above
        ``ratio_threshold`` for ``patience`` evaluations in a row; each block of
        consecutive EVAL steps is compared with the TRAIN block before it."""
        parameters = {"start_step": 0, "patience": 1, "ratio_threshold": 0.1}

        def invoke_at_step(self, step):
            if step != self.base_trial.steps()[-1]:
                return False
            found = False
            for name in self.names("losses"):
                t = self.base_trial.tensor(name)
                blocks: list[tuple[str, list[float]]] = []
                for s in t.steps():
                    if s < self.parameters["start_step"]:
                        continue
                    mode = self.base_trial.mode(s)
                    if mode not in (ModeKeys.TRAIN, ModeKeys.EVAL):
                        continue
                    if not blocks or blocks[-1][0] != mode.name:
                        blocks.append((mode.name, []))
                    blocks[-1][1].append(float(t.value(s)))
                run = 0
                for (m0, train), (m1, val) in zip(blocks, blocks[1:]):
                    if (m0, m1) != ("TRAIN", "EVAL"):
                        continue
                    self.checked += 1
                    ratio = (mean(val) - mean(train)) / max(abs(mean(train)), 1e-12)
                    run = run + 1 if ratio > self.parameters["ratio_threshold"] else 0
                    if run >= self.parameters["patience"]:
                        found = self.violation(f"{name}: validation loss {mean(val):.4g} vs train "
                                               f"{mean(train):.4g} (ratio {ratio:.2f})")
            return found

    return {cls.__name__: cls for cls in
            (LossNotDecreasing, VanishingGradient, PoorWeightInitialization, Overfit)}
