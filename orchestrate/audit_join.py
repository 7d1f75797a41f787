"""An audit's join: every input photo, its transform output and its expected quantity,
as one row with the core's verdict.

Inputs, outputs and metadata live in a ``Store``: an S3 prefix or a local folder.
Batch Transform writes one ``<input name>.out`` object per input photo (its
subfolder under the output path differs between the service and the SDK's local
mode), so outputs are matched to photos by file name; photo names must be unique.
A photo with no output, an error record, no expected quantity or one outside the
model's counts is a row with its reason, never dropped.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from botocore.exceptions import ClientError

from bincounter.metadata import MetadataError, parse_expected_quantity
from bincounter.modelcard import ModelCard
from bincounter.verification import VERDICTS
from orchestrate.manifest import IMAGE_SUFFIXES, bin_id, list_keys, split_s3

log = logging.getLogger(__name__)

FAILED = "error"
NO_EXPECTED = "no-expected-quantity"
NOT_VERIFIABLE = "not-verifiable"
ALL_VERDICTS = VERDICTS + (NOT_VERIFIABLE, NO_EXPECTED, FAILED)


class AuditError(RuntimeError):
    """Inputs that cannot be audited (no photos, clashing names, a bad expected-quantity CSV)."""


class Store:
    """Objects under one S3 prefix or local folder, by key relative to it."""

    def __init__(self, uri: str, s3=None):
        self.uri = uri
        if uri.startswith("s3://"):
            if s3 is None:
                raise AuditError(f"{uri}: an S3 client is needed to read it")
            self.bucket, prefix = split_s3(uri)
            self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
            self.s3, self.root = s3, None
        else:
            self.root, self.s3 = Path(uri), None

    def keys(self) -> list[str]:
        if self.root is not None:
            return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k[len(self.prefix):] for k in list_keys(self.s3, self.bucket, self.prefix))

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        if self.root is not None:
            path = self.root / key
            return path.read_bytes() if path.is_file() else None
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def where(self, key: str) -> str:
        return str(self.root / key) if self.root is not None else f"s3://{self.bucket}/{self.prefix}{key}"


@dataclass
class Row:
    bin_id: str
    expected: int | None = None
    counted: int | None = None
    match_probability: float | None = None
    confidence: float | None = None
    verdict: str = FAILED
    error: str = ""


def photo_ids(keys: list[str]) -> list[str]:
    """Bin ids of the photo keys, in order; two photos with one name cannot be told apart."""
    photos = [k for k in keys if k.lower().endswith(IMAGE_SUFFIXES)]
    ids = [bin_id(k) for k in photos]
    seen: dict[str, str] = {}
    for key in photos:
        other = seen.setdefault(bin_id(key), key)
        if other != key:
            raise AuditError(f"two photos share the name {bin_id(key)!r} ({other}, {key}): outputs are "
                             "named after the photo, so names must be unique")
    if not ids:
        raise AuditError("no photos (.jpg, .jpeg, .png) to audit")
    return ids


def read_expected_csv(text: str, where: str) -> dict[str, int | None]:
    """``bin_id,expected_quantity`` rows (header required); an empty quantity means unknown."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0][:2]] != ["bin_id", "expected_quantity"]:
        raise AuditError(f"{where}: the first line must be the header bin_id,expected_quantity")
    out: dict[str, int | None] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        raw = row[1].strip() if len(row) > 1 else ""
        if raw and not raw.isdigit():
            raise AuditError(f"{where} line {n}: expected_quantity {raw!r} is not a whole number")
        out[row[0].strip()] = int(raw) if raw else None
    return out


def read_expected_metadata(store: Store, ids: list[str], workers: int = 16) -> tuple[dict, dict]:
    """(expected quantity by id, reason by id for the ones without) from ``<id>.json`` in ``store``,
    parsed by the core's label parser."""
    def one(i: str) -> tuple[str, int | None, str]:
        try:
            raw = store.get(f"{i}.json")
        except ClientError as exc:
            return i, None, f"{store.where(i + '.json')}: {exc}"
        if raw is None:
            return i, None, f"no metadata object {store.where(i + '.json')}"
        try:
            return i, parse_expected_quantity(raw), ""
        except MetadataError as exc:
            return i, None, f"{store.where(i + '.json')}: {exc}"

    expected, reasons = {}, {}
    with ThreadPoolExecutor(workers) as pool:
        for i, qty, reason in pool.map(one, ids):
            expected[i] = qty
            if reason:
                reasons[i] = reason
    log.info("expected quantities: %d read, %d missing or unreadable", len(ids) - len(reasons), len(reasons))
    return expected, reasons


def read_outputs(store: Store, workers: int = 16) -> dict[str, list]:
    """The answers in every ``<name>.out`` object, by the photo's bin id: one JSON document per
    non-blank line (AssembleWith=Line adds a newline of its own)."""
    keys = [k for k in store.keys() if k.endswith(".out")]

    def one(key: str) -> tuple[str, list]:
        answers = []
        for line in (store.get(key) or b"").decode("utf-8", "replace").splitlines():
            if line.strip():
                try:
                    answers.append(json.loads(line))
                except ValueError:
                    answers.append({"error": f"output is not JSON: {line[:200]!r}"})
        return bin_id(PurePosixPath(key).name[: -len(".out")]), answers

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, keys))


def _row(sid: str, expected: int | None, answers: list | None, card: ModelCard, why_no_expected: str) -> Row:
    row = Row(sid, expected)
    if answers is None:
        row.error = "no output: the transform job wrote nothing for this photo"
        return row
    if len(answers) != 1 or not isinstance(answers[0], dict):
        row.error = f"expected one answer in the output, found {len(answers)}"
        return row
    answer = answers[0]
    if "error" in answer:
        row.error = str(answer["error"])
        return row
    row.counted, row.confidence = answer.get("count"), answer.get("confidence")
    probabilities = answer.get("probabilities") or {}
    if expected is None:
        row.verdict, row.error = NO_EXPECTED, why_no_expected
    elif str(expected) not in probabilities:
        row.verdict = NOT_VERIFIABLE
        row.error = (f"expected quantity {expected} is outside the counts the model knows "
                     f"({card.classes[0]}..{card.classes[-1]})")
    else:
        row.match_probability = float(probabilities[str(expected)])
        row.verdict = card.verification.verdict(row.match_probability, int(expected))
    return row


def join(ids: list[str], outputs: dict[str, list], expected: dict[str, int | None], card: ModelCard,
         no_expected_reasons: dict[str, str] | None = None) -> list[Row]:
    """One row per photo, in input order."""
    reasons = no_expected_reasons or {}
    rows = [_row(i, expected.get(i), outputs.get(i), card,
                 reasons.get(i, "no expected quantity given for this bin")) for i in ids]
    stray = sorted(set(outputs) - set(ids))
    if stray:
        log.warning("%d outputs match no input photo (e.g. %s): ignored", len(stray), stray[0])
    return rows
