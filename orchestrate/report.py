"""``orchestrate report``: what a training or tuning job did and what it cost.

The spot saving is SageMaker's own: ``(1 - billable / training seconds) * 100``
(the seed's 62.8 % = 1 - 714 / 1921).
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)


def spot_saving(training_seconds: int | None, billable_seconds: int | None) -> float | None:
    """Percent saved by managed spot; None when SageMaker has not reported both times."""
    if not training_seconds or billable_seconds is None:
        return None
    return round((1 - billable_seconds / training_seconds) * 100, 1)


def training_report(desc: dict) -> dict:
    """From a DescribeTrainingJob reply."""
    training, billable = desc.get("TrainingTimeInSeconds"), desc.get("BillableTimeInSeconds")
    rules = [{"rule": r["RuleConfigurationName"], "status": r["RuleEvaluationStatus"],
              "details": r.get("StatusDetails", "")}
             for r in desc.get("DebugRuleEvaluationStatuses", []) + desc.get("ProfilerRuleEvaluationStatuses", [])]
    return {
        "training_job": desc["TrainingJobName"],
        "status": desc["TrainingJobStatus"],
        "failure_reason": desc.get("FailureReason"),
        "managed_spot": bool(desc.get("EnableManagedSpotTraining")),
        "instance": f"{desc['ResourceConfig']['InstanceCount']} x {desc['ResourceConfig']['InstanceType']}",
        "hyperparameters": desc.get("HyperParameters", {}),
        "final_metrics": {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList", [])},
        "training_seconds": training,
        "billable_seconds": billable,
        "spot_saving_percent": spot_saving(training, billable),
        "model_artifact": desc.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
        "debugger_rules": rules,
    }


def tuning_report(desc: dict, jobs: list[dict]) -> dict:
    """From DescribeHyperParameterTuningJob and ListTrainingJobsForHyperParameterTuningJob replies."""
    objective = desc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    sign = -1 if objective["Type"] == "Maximize" else 1

    def key(job: dict):
        value = job.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
        return (value is None, sign * value if value is not None else 0, job["TrainingJobName"])

    rows = [{"training_job": j["TrainingJobName"], "status": j["TrainingJobStatus"],
             "objective": j.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value"),
             "hyperparameters": j.get("TunedHyperParameters", {})} for j in sorted(jobs, key=key)]
    return {
        "tuning_job": desc["HyperParameterTuningJobName"],
        "status": desc["HyperParameterTuningJobStatus"],
        "objective": f"{objective['MetricName']} ({objective['Type']})",
        "best_training_job": (desc.get("BestTrainingJob") or {}).get("TrainingJobName"),
        "jobs": rows,
    }


def fetch_training(sm, name: str) -> dict:
    return training_report(sm.describe_training_job(TrainingJobName=name))


def fetch_tuning(sm, name: str) -> dict:
    desc = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name)
    return tuning_report(desc, [j for page in pages for j in page["TrainingJobSummaries"]])


def _seconds(value) -> str:
    return "n/a" if value is None else f"{value} s"


def render(report: dict) -> str:
    """Plain text for a terminal; ``--json`` prints the dict instead."""
    if "tuning_job" in report:
        lines = [f"tuning job {report['tuning_job']}: {report['status']}",
                 f"objective: {report['objective']}, best: {report['best_training_job'] or 'n/a'}",
                 f"{'objective':>10}  {'status':<10} training job / hyperparameters"]
        for row in report["jobs"]:
            value = "n/a" if row["objective"] is None else f"{row['objective']:.4f}"
            lines.append(f"{value:>10}  {row['status']:<10} {row['training_job']} "
                         f"{json.dumps(row['hyperparameters'], sort_keys=True)}")
        return "\n".join(lines)
    saving = report["spot_saving_percent"]
    lines = [f"training job {report['training_job']}: {report['status']}"
             + (f" ({report['failure_reason']})" if report["failure_reason"] else ""),
             f"instances: {report['instance']}, managed spot: {'yes' if report['managed_spot'] else 'no'}",
             f"training time: {_seconds(report['training_seconds'])}, "
             f"billable time: {_seconds(report['billable_seconds'])}, "
             f"spot saving: {'n/a' if saving is None else f'{saving:.1f} %'}",
             f"model: {report['model_artifact'] or 'n/a'}"]
    lines += [f"  {name} = {value:g}" for name, value in sorted(report["final_metrics"].items())]
    lines += [f"  rule {r['rule']}: {r['status']} {r['details']}".rstrip() for r in report["debugger_rules"]]
    return "\n".join(lines)
