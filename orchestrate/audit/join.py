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

from botocore.exceptions import BotoCoreError, ClientError

from bincounter.metadata import MetadataError, parse_expected_quantity
from bincounter.modelcard import ModelCard
from bincounter.verification import VERDICTS
from orchestrate.core.aws import S3Clients
from orchestrate.core.costs import Cost
from orchestrate.core.store import Store
from orchestrate.data.manifest import IMAGE_SUFFIXES, bin_id

log = logging.getLogger(__name__)

FAILED = "error"
# an output S3 (or the disk) would not give, after botocore's retries: the bin is an error row
# whose reason starts so, and `orchestrate audit --job JOB` run again reads it (docs/cloud.md "Faults")
UNREAD = "output not read"
NO_EXPECTED = "no-expected-quantity"
NOT_VERIFIABLE = "not-verifiable"
ALL_VERDICTS = VERDICTS + (NOT_VERIFIABLE, NO_EXPECTED, FAILED)


class AuditError(RuntimeError):
    """Inputs that cannot be audited (no photos, clashing names, a bad expected-quantity CSV)."""


@dataclass(frozen=True)
class Transformed:
    """What a run step leaves for the join, the same whichever way the transform ran (a
    SageMaker job, one joined again, the SDK's local mode, a running serving container)."""

    job: str
    photo_names: tuple[str, ...]  # every photo sent, in order (keys or file names)
    outputs: Store                # where its ``<name>.out`` objects are
    card: ModelCard
    facts: tuple[str, ...]        # the report's lines on the job, photos, model and outputs
    cost: Cost | None
    title: str
    out: Path                     # where the report goes


@dataclass
class Row:
    bin_id: str
    expected: int | None = None
    counted: int | None = None
    match_probability: float | None = None
    confidence: float | None = None
    verdict: str = FAILED
    error: str = ""
    # every class's probability, kept only when asked (promote's golden score asks each count)
    probabilities: dict[str, float] | None = None


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


def expected_quantities(expected_csv: str, metadata: str, ids: list[str], clients: S3Clients,
                        workers: int = 16) -> tuple[dict, dict]:
    """(expected by id, reason by id where there is none): the ``--expected`` CSV (a file or
    s3://), else ``<id>.json`` under ``metadata`` (a folder or an S3 prefix)."""
    if expected_csv:
        in_s3 = expected_csv.startswith("s3://")
        text = Store(expected_csv, clients.for_uri(expected_csv) if in_s3 else None).read_text(expected_csv)
        expected = read_expected_csv(text, expected_csv)
        return expected, {i: f"not in {expected_csv}" for i in ids if i not in expected}
    if not metadata:
        log.warning("no expected quantities (give --metadata or --expected): every bin is reported as such")
        return {}, {i: "no --metadata or --expected given" for i in ids}
    client = clients.for_uri(metadata) if metadata.startswith("s3://") else None  # a folder needs no client
    return read_expected_metadata(Store(metadata, client), ids, workers)


def rows(done: Transformed, expected_csv: str, metadata: str, clients: S3Clients, workers: int = 16,
         keep_probabilities: bool = False) -> list[Row]:
    """The audit's join step: every photo the run sent, its output, its expected quantity (from
    ``expected_csv`` or ``metadata``) and its verdict, in the order sent."""
    ids = photo_ids(list(done.photo_names))
    expected, reasons = expected_quantities(expected_csv, metadata, ids, clients, workers)
    return join(ids, read_outputs(done.outputs, workers), expected, done.card, reasons, keep_probabilities)


def read_expected_metadata(store: Store, ids: list[str], workers: int = 16) -> tuple[dict, dict]:
    """(expected quantity by id, reason by id for the ones without) from ``<id>.json`` in ``store``,
    parsed by the core's label parser."""
    def one(i: str) -> tuple[str, int | None, str]:
        try:
            raw = store.get(f"{i}.json")
        except (ClientError, BotoCoreError, OSError) as exc:
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
        try:
            raw = store.get(key) or b""
        except (ClientError, BotoCoreError, OSError) as exc:  # after botocore's own retries
            return bin_id(PurePosixPath(key).name[: -len(".out")]), [{"error": f"{UNREAD}: {store.where(key)}: {exc}"}]
        for line in raw.decode("utf-8", "replace").splitlines():
            if line.strip():
                try:
                    answers.append(json.loads(line))
                except ValueError:
                    answers.append({"error": f"output is not JSON: {line[:200]!r}"})
        return bin_id(PurePosixPath(key).name[: -len(".out")]), answers

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, keys))


def _row(sid: str, expected: int | None, answers: list | None, card: ModelCard, why_no_expected: str,
         keep_probabilities: bool = False) -> Row:
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
    if keep_probabilities:
        row.probabilities = {str(k): float(v) for k, v in probabilities.items()}
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
         no_expected_reasons: dict[str, str] | None = None, keep_probabilities: bool = False) -> list[Row]:
    """One row per photo, in input order."""
    reasons = no_expected_reasons or {}
    rows = [_row(i, expected.get(i), outputs.get(i), card,
                 reasons.get(i, "no expected quantity given for this bin"), keep_probabilities) for i in ids]
    stray = sorted(set(outputs) - set(ids))
    if stray:
        log.warning("%d outputs match no input photo (e.g. %s): ignored", len(stray), stray[0])
    return rows
