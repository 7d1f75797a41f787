"""``orchestrate monitor --status``: is the scheduled monitor reporting, and on which model?

The schedule and the model its runs judge against (against the model the endpoint serves),
the last runs with their outcome and failure reason, and both alarms' states. Read-only.
"""

from __future__ import annotations

from orchestrate.core.config import Config
from orchestrate.monitor import schedule


def runs(sm, job_prefix: str, n: int = 5) -> list[dict]:
    """The newest ``n`` monitor jobs: name, status, start, end and failure reason."""
    found = sm.list_processing_jobs(NameContains=job_prefix, SortBy="CreationTime", SortOrder="Descending",
                                    MaxResults=n)["ProcessingJobSummaries"]
    out = []
    for job in found:
        d = sm.describe_processing_job(ProcessingJobName=job["ProcessingJobName"])
        out.append({"job": job["ProcessingJobName"], "status": d["ProcessingJobStatus"],
                    "created": str(d.get("CreationTime", "")), "ended": str(d.get("ProcessingEndTime", "")),
                    "failure": d.get("FailureReason", "") or d.get("ExitMessage", "")})
    return out


def lines(sm, cloudwatch, scheduler, cfg: Config, served: str) -> list[str]:
    """The report, a line each; ``served``: the model the endpoint serves ("" without one)."""
    names = schedule.Names.of(cfg.aws.stack)
    found = schedule.current(scheduler, cfg)
    if found is None:
        out = [f"schedule: none for stack {cfg.aws.stack} (orchestrate monitor --schedule 'rate(1 day)' makes it)"]
    else:
        judged = schedule.judged_model(found)
        out = [f"schedule: {found['Name']} {found['ScheduleExpression']} ({found.get('State', '?')}), judging "
               f"against {judged}"]
        if served and served != judged:
            out.append(f"  stale: the endpoint serves {served}; run `orchestrate monitor --schedule "
                       f"'{found['ScheduleExpression']}'` (it reads the endpoint's model) to judge against it")
    jobs = runs(sm, names.job_prefix)
    out.append(f"last runs ({len(jobs)}):" if jobs else "last runs: none yet")
    for r in jobs:
        why = f": {r['failure']}" if r["failure"] and r["status"] != "Completed" else ""
        out.append(f"  {r['job']} {r['status']} (created {r['created']}, ended {r['ended'] or '-'}){why}")
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(
        AlarmNames=[names.alarm, names.silent_alarm])["MetricAlarms"]}
    for name in (names.alarm, names.silent_alarm):
        a = alarms.get(name)
        out.append(f"alarm {name}: " + (f"{a['StateValue']} ({a.get('StateReason', '')})" if a else "none"))
    return out
