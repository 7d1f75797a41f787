"""`review export`'s steps: the bins to count (an audit's recount list, bins picked to teach the
model, or a plain id list) -> one Label Studio task per bin.

The labelling config shows the photo and asks for one choice of ``bincounter.reviews.CHOICES``.
**Blind** (``[review] blind``, the default), that is all a person sees: warehouse cycle counts
hide the expected quantity because a counter who sees it tends to confirm it. Not blind, the
task also shows "Expected quantity: N" and pre-selects the model's count. Either way the record,
the model's answer and why the bin was picked stay in the task's data for the export. A photo is shown where it is: ``s3://`` through the
project's S3 storage (Label Studio presigns the URL when a person opens the task), a local
file through its local-files storage (under ``[review] local_root``).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from xml.sax.saxutils import quoteattr

from bincounter.reviews import CHOICES, PURPOSES
from orchestrate.audit.join import Row
from orchestrate.audit.report import recount_order
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.store import Store, split_s3

FROM_NAME, TO_NAME = "count", "photo"


def label_config(blind: bool) -> str:
    """The project's labelling config: the photo and the choices, and the expected quantity
    unless ``blind``."""
    return ("<View>\n  <Image name=\"photo\" value=\"$image\" zoom=\"true\"/>\n"
            + ("" if blind else "  <Header value=\"$expected_text\"/>\n")
            + "  <Choices name=\"count\" toName=\"photo\" choice=\"single\" showInline=\"true\" required=\"true\">\n"
            + "".join(f"    <Choice value={quoteattr(c)}/>\n" for c in CHOICES)
            + "  </Choices>\n</View>\n")



class ReviewError(ConfigError):
    """Review inputs that cannot be used (no audit.csv, a photo outside local_root, ...)."""


@dataclass(frozen=True)
class Recount:
    """One bin to recount: where its photo is and what the audit said about it."""
    bin_id: str
    photo: str
    expected: int | None = None
    counted: int | None = None
    confidence: float | None = None
    verdict: str | None = None


def _num(text: str, kind):
    return kind(text) if text not in ("", None) else None


def _audit_csv(location: str, s3=None) -> tuple[Store, list[dict]]:
    store = Store(location.rstrip("/") + "/", s3)
    raw = store.get("audit.csv") if location.startswith("s3://") or Path(location).is_dir() else None
    if raw is None:
        raise ReviewError(f"{store.where('audit.csv')}: no audit.csv there; give the folder `orchestrate audit "
                          "--out` wrote, or its s3:// copy")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    if rows and "photo" not in rows[0]:
        raise ReviewError(f"{store.where('audit.csv')}: no 'photo' column (written by an audit before review export existed); "
                          "audit again, or export from an id list with --photos")
    return store, rows


def _recount(r: dict) -> Recount:
    return Recount(r["bin_id"], r["photo"], _num(r["expected"], int), _num(r["counted"], int),
                   _num(r.get("confidence", ""), float), r["verdict"])


def from_audit(location: str, s3=None) -> list[Recount]:
    """The audit's recount list (mismatches, most certain first, then reviews: the report's own
    order) from its audit.csv, in a folder or under an ``s3://`` prefix."""
    _, rows = _audit_csv(location, s3)
    by_id = {r["bin_id"]: r for r in rows}
    ordered = recount_order([Row(r["bin_id"], _num(r["expected"], int), _num(r["counted"], int),
                                 _num(r["match_probability"], float), verdict=r["verdict"]) for r in rows])
    return [_recount(by_id[r.bin_id]) for r in ordered]


def audited(location: str, s3=None) -> list[Recount]:
    """Every bin the audit counted (not its error rows), in audit.csv's order."""
    return [_recount(r) for r in _audit_csv(location, s3)[1] if r["counted"] not in ("", None) and r["photo"]]


def from_ids(ids: list[str], photos: str, expected: dict[str, int | None] | None = None) -> list[Recount]:
    """Bins of a plain id list, their photos ``<photos>/<id>.jpg``; no model answer to show."""
    base = photos.rstrip("/") if photos.startswith("s3://") else str(Path(photos).resolve())
    return [Recount(i, f"{base}/{i}.jpg", (expected or {}).get(i)) for i in ids]


def storage_for(photo: str, cfg: Config) -> tuple[str, dict]:
    """The import storage that lets Label Studio show ``photo``: (kind, settings)."""
    if photo.startswith("s3://"):
        bucket, key = split_s3(photo)
        return "s3", {"bucket": bucket, "prefix": str(PurePosixPath(key).parent), "presign": True,
                      "presign_ttl": cfg.review.presign_ttl_minutes, "use_blob_urls": True,
                      "title": f"photos s3://{bucket}", "region_name": cfg.data.source_region}
    return "localfiles", {"path": str(Path(photo).parent), "use_blob_urls": True,
                          "title": f"photos {Path(photo).parent}"}


def photo_url(photo: str, cfg: Config) -> str:
    """What the task's ``image`` holds: the s3:// URL (the storage presigns it), or Label
    Studio's local-files URL of a path under ``[review] local_root``."""
    if photo.startswith("s3://"):
        return photo
    root = cfg.review.local_root
    if not root:
        raise ReviewError("local photos need [review] local_root: the folder Label Studio serves local files "
                          "from (its LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)")
    rel = os.path.relpath(Path(photo).resolve(), Path(root).resolve())
    if rel.startswith(".."):
        raise ReviewError(f"{photo} is not under [review] local_root {root}: Label Studio cannot show it")
    if "/" not in rel:  # Label Studio's own rule: a storage may not be the document root itself
        raise ReviewError(f"{photo} lies directly in [review] local_root {root}: Label Studio serves photos "
                          "from a subfolder of it (set local_root one folder up)")
    return f"/data/local-files/?d={rel}"


def shows_expected(config: str) -> bool:
    """Whether a project's labelling config shows the expected quantity (is not blind)."""
    return "$expected_text" in config


def task(r: Recount, cfg: Config, model_version: str, purpose: str = PURPOSES[0], strategy: str = "") -> dict:
    """One Label Studio task: the photo, the audit's facts and why the bin was picked; not blind,
    also the expected quantity as text and the model's count as a pre-annotation scored by its
    probability (the Data Manager sorts by it)."""
    data = {"image": photo_url(r.photo, cfg), "source_ref": r.photo, "bin_id": r.bin_id, "expected": r.expected,
            "verdict": r.verdict, "counted": r.counted, "purpose": purpose, "strategy": strategy}
    if not cfg.review.blind:
        data["expected_text"] = f"Expected quantity: {'not recorded' if r.expected is None else r.expected}"
    out: dict = {"data": data}
    if not cfg.review.blind and r.counted is not None and str(r.counted) in CHOICES:
        out["predictions"] = [{"model_version": model_version, "score": r.confidence or 0.0,
                               "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                                           "value": {"choices": [str(r.counted)]}}]}]
    return out
