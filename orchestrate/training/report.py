"""``orchestrate report``: what a training or tuning job did and what it cost, and what
serving its model costs per million checks (``orchestrate.costs``).

The spot saving is SageMaker's own: ``(1 - billable / training seconds) * 100``
(the seed's 62.8 % = 1 - 714 / 1921). ``--rules`` downloads the job's smdebug
tensors with the given S3 client and evaluates our debugger rules on the copy
(``bincounter.training.rules``); smdebug's own S3 reader would ignore that
client's endpoint and retry settings.
"""

from __future__ import annotations

import json
import logging
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from botocore.exceptions import ClientError

from bincounter.guarantees import miss_lines
from bincounter.modelcard import ModelCard, ModelCardError
from bincounter.training.rules import evaluate_rules
from orchestrate.core import costs
from orchestrate.core.store import list_keys, split_s3, tar_members

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


def output_uri(desc: dict) -> str:
    """Where SageMaker put the job's ``output/data`` folder (evaluation.json among it)."""
    return f"{desc['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{desc['TrainingJobName']}/output/output.tar.gz"


def verdict_report(s3, desc: dict) -> dict | None:
    """The model's verdicts as its card states them (read from evaluation.json in the job's
    output.tar.gz, a few MB, not the model artifact): thresholds per expected count, the
    promise, and every count whose test rate is above its target. None before the job completed;
    an ``error`` entry, not an exception, when the output cannot be read."""
    if desc.get("TrainingJobStatus") != "Completed":
        return None
    uri = output_uri(desc)
    try:
        found = tar_members(uri, {"evaluation.json"}, s3)
        if "evaluation.json" not in found:
            return {"source": uri, "error": "no evaluation.json in the job's output"}
        card = ModelCard.from_dict(json.loads(found["evaluation.json"])["model"])
    except (ClientError, tarfile.TarError, OSError, KeyError, ValueError, ModelCardError) as exc:
        return {"source": uri, "error": str(exc) if isinstance(exc, ClientError) else f"{type(exc).__name__}: {exc}"}
    op = card.operating_point
    test = card.served_test_point()
    return {"source": uri, "thresholds": card.verification.describe(), "promise": op.get("promise"),
            "targets": op.get("targets"), "above_target": miss_lines(test, op["targets"]) if test and
            op.get("targets") else [], "measured": bool(test)}


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


def _split_s3(uri: str) -> tuple[str, str]:
    """(bucket, folder without slashes at its ends) of the S3 folder debug tensors are in."""
    if not uri.startswith("s3://"):
        raise LookupError(f"debug tensors at {uri}: only s3:// locations can be read")
    bucket, key = split_s3(uri)
    return bucket, key.strip("/")


def find_trial(s3, desc: dict) -> str:
    """The S3 folder (``s3://.../``) of the smdebug trial a training job saved."""
    name = desc["TrainingJobName"]
    out = (desc.get("DebugHookConfig") or {}).get("S3OutputPath")
    if not out:
        raise LookupError(f"training job {name} has no DebugHookConfig: it saved no smdebug "
                          "tensors to evaluate (started with train.debug_hook = false?)")
    bucket, base = _split_s3(out)
    # where SageMaker uploads the hook's tensors; one probe, nothing wider is listed:
    # the output path is shared by every job of the stack
    root = f"{base}/{name}/debug-output/" if base else f"{name}/debug-output/"
    if s3.list_objects_v2(Bucket=bucket, Prefix=f"{root}index/", MaxKeys=1).get("KeyCount"):
        return f"s3://{bucket}/{root}"
    raise LookupError(f"no smdebug tensors found under s3://{bucket}/{root} for training job {name} "
                      "(SageMaker uploads them while the job runs, after its first saved step)")


def download_trial(s3, uri: str, dest: Path, workers: int = 8) -> Path:
    """Every object under ``uri`` (a folder) to the same relative paths under ``dest``."""
    bucket, prefix = _split_s3(uri)
    prefix = f"{prefix}/" if prefix else ""
    keys = [k for k in list_keys(s3, bucket, prefix) if not k.endswith("/")]
    top = dest.resolve()
    targets = {k: (top / k[len(prefix):]).resolve() for k in keys}
    for key, path in targets.items():
        if not path.is_relative_to(top):  # a key with ../ must not write outside dest
            raise LookupError(f"s3://{bucket}/{key} would land outside {dest}")
        path.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda kv: s3.download_file(bucket, kv[0], str(kv[1])), targets.items()))
    log.info("downloaded %d objects of the smdebug trial %s to %s", len(keys), uri, dest)
    return dest


def evaluate_job_rules(s3, desc: dict, workdir: Path) -> dict:
    """Our debugger rules on a training job's saved tensors, read with ``s3`` into ``workdir``:
    ``{"tensors": "s3://.../", "rules": [evaluate_rules' verdicts]}``."""
    uri = find_trial(s3, desc)
    results = evaluate_rules(str(download_trial(s3, uri, workdir)))
    log.info("debugger rules on %s of %s: %s", uri, desc["TrainingJobName"],
             ", ".join(f"{r['rule']} {r['status']}" for r in results))
    return {"tensors": uri, "rules": results}


def fetch_tuning(sm, name: str) -> dict:
    desc = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name)
    return tuning_report(desc, [j for page in pages for j in page["TrainingJobSummaries"]])


def transform_report(desc: dict, hourly_price: float) -> dict:
    """From a DescribeTransformJob reply (an audit's job): what it read and wrote, and its cost."""
    cost = costs.job_cost(desc, hourly_price, 0)
    source = desc["TransformInput"]["DataSource"]["S3DataSource"]
    return {
        "transform_job": desc["TransformJobName"],
        "status": desc["TransformJobStatus"],
        "failure_reason": desc.get("FailureReason") or None,
        "instance": f"{desc['TransformResources']['InstanceCount']} x {desc['TransformResources']['InstanceType']}",
        "input": f"{source['S3Uri']} ({source['S3DataType']})",
        "output": desc["TransformOutput"]["S3OutputPath"],
        "instance_seconds": None if cost is None else cost.instance_seconds,
        "cost": None if cost is None else round(cost.total, 4),
        "hourly_price": hourly_price,
    }


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
    if "transform_job" in report:
        cost = "n/a" if report["cost"] is None else (f"${report['cost']:.4f} ({report['instance_seconds']:,.0f} "
                                                     f"instance-seconds x ${report['hourly_price']}/h)")
        return "\n".join([f"transform job {report['transform_job']}: {report['status']}"
                          + (f" ({report['failure_reason']})" if report["failure_reason"] else ""),
                          f"instances: {report['instance']}, cost: {cost}",
                          f"input: {report['input']}", f"output: {report['output']}",
                          "the audit's report: orchestrate audit --job " + report["transform_job"]])
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
    verdicts = report.get("verdicts")
    if verdicts and "error" in verdicts:
        lines.append(f"verdicts: cannot read {verdicts['source']}: {verdicts['error']}")
    elif verdicts:
        lines.append(f"verdicts ({verdicts['promise'] or 'no targets stated'}): {verdicts['thresholds']}")
        if not verdicts["measured"]:
            lines.append("  no error rates were measured for these thresholds")
        lines += [f"  ABOVE TARGET on the test split: {line}" for line in verdicts["above_target"]]
        if verdicts["measured"] and not verdicts["above_target"]:
            lines.append("  every expected count is within its targets on the test split")
    if "serving_cost" in report:
        lines += costs.render(report["serving_cost"]["rows"], report["serving_cost"]["measured"])
    evaluated = report.get("evaluated_rules")
    if evaluated:
        lines.append(f"debugger rules evaluated on {evaluated['tensors']}:")
        lines += [f"  rule {r['rule']}: {r['status']} ({r['violations']} violations in "
                  f"{r['steps_checked']} checks) {r['details'][0] if r['details'] else ''}".rstrip()
                  for r in evaluated["rules"]]
    return "\n".join(lines)
