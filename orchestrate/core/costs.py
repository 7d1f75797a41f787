"""What checks cost: an instance's hourly price over the images it serves in that hour,
and what a finished Batch Transform job cost (``job_cost``).

    USD per million checks = hourly_usd / (img_per_s x 3600) x 1,000,000

Both inputs come from the ``[costs]`` configuration: the price is AWS's, the rate
is a measurement (``make bench-serve``; ``costs.measured`` says where and when),
so the figure holds only as far as that measurement carries to your instances.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMULA = "USD per million checks = hourly_usd / (img_per_s x 3600) x 1e6"


def cost_per_million(hourly_usd: float, img_per_s: float) -> float:
    """USD for a million checks by an instance serving ``img_per_s`` around the clock."""
    if img_per_s <= 0:
        raise ValueError(f"img/s must be positive, got {img_per_s}")
    return hourly_usd / (img_per_s * 3600) * 1e6


def serving_costs(hourly_usd: dict, img_per_s: dict) -> list[dict]:
    """One row per instance type with both a price and measured rates, and per model."""
    rows = []
    for kind in sorted(set(hourly_usd) & set(img_per_s)):
        for model, rate in sorted(img_per_s[kind].items()):
            rows.append({"instance_type": kind, "model": model, "hourly_usd": hourly_usd[kind],
                         "img_per_s": rate, "usd_per_million": round(cost_per_million(hourly_usd[kind], rate), 3)})
    return rows


def render(rows: list[dict], measured: str) -> list[str]:
    """Plain-text lines for ``orchestrate report``."""
    if not rows:
        return ["serving cost: no [costs] rate with a price is configured"]
    lines = [f"serving cost ({FORMULA}; rates measured {measured}):"]
    lines += [f"  {r['instance_type']} {r['model']}: {r['img_per_s']:g} img/s at ${r['hourly_usd']:g}/h "
              f"-> ${r['usd_per_million']:.3f} per million checks" for r in rows]
    return lines


@dataclass(frozen=True)
class Cost:
    """What the job's instances cost: billed from TransformStartTime to TransformEndTime."""
    instance_seconds: float
    hourly_price: float
    instances: str  # e.g. "2 x ml.m5.large"
    bins: int

    @property
    def total(self) -> float:
        return self.instance_seconds / 3600 * self.hourly_price

    def per(self, n: int) -> float:
        return self.total / self.bins * n if self.bins else 0.0

    def line(self) -> str:
        return (f"{self.instance_seconds:,.0f} instance-seconds ({self.instances}) x ${self.hourly_price}/h = "
                f"${self.total:.4f}: ${self.per(1000):.4f} per 1,000 bins, ${self.per(1_000_000):,.2f} "
                f"per million bins")


def job_cost(desc: dict, price: float, bins: int) -> Cost | None:
    """From DescribeTransformJob: SageMaker bills TransformStartTime to TransformEndTime per instance."""
    start, end = desc.get("TransformStartTime"), desc.get("TransformEndTime")
    if not (start and end):
        return None
    res = desc["TransformResources"]
    return Cost((end - start).total_seconds() * res["InstanceCount"], price,
                f"{res['InstanceCount']} x {res['InstanceType']}", bins)
