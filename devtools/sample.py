"""``make sample``: the real ABID sample the tests and benchmarks read, fetched from the public
bucket when it is not there.

The same 4,995 bins as the shared copy (their ids: ``devtools/abid-sample-ids.txt``; 3,310 in
counts 1-5), read anonymously from ``s3://aft-vbi-pds`` (us-east-1) by ``orchestrate data``'s
own download step (parallel, atomic, checked against Content-Length and the MD5), each photo
then resized to 224x224 JPEG like the shared copy; the metadata is kept byte for byte.

Resumable: a bin whose photo and metadata are both in place is done and never fetched again;
the originals wait in ``DEST/.originals/`` until converted, and a run cut short keeps the ones
already whole there. The destination is ``$ABID_SAMPLE`` (default ``../shared/data/abid-sample``,
where CI's copy is), the folder the tests and benchmarks read.

    python -m devtools.sample [--dest DIR] [--ids FILE] [--workers 16]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

from PIL import Image

from devtools.local_toolkit import ROOT, SAMPLE

IDS = ROOT / "devtools" / "abid-sample-ids.txt"
BUCKET, REGION = "aft-vbi-pds", "us-east-1"
SIZE = 224
QUALITY = 90
STAGING = ".originals"

log = logging.getLogger("sample")


def done(dest: Path, sid: str) -> bool:
    return (dest / "images" / f"{sid}.jpg").is_file() and (dest / "metadata" / f"{sid}.json").is_file()


def convert(dest: Path, sid: str) -> None:
    """A downloaded bin from the staging folder into place: the photo resized to SIZE x SIZE,
    then the metadata; each written whole (temp file, then rename), the originals removed."""
    staged = dest / STAGING
    photo, meta = staged / "images" / f"{sid}.jpg", staged / "metadata" / f"{sid}.json"
    for sub in ("images", "metadata"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    tmp = dest / "images" / f".{sid}.jpg.part"
    with Image.open(photo) as im:
        im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(tmp, "JPEG", quality=QUALITY)
    os.replace(tmp, dest / "images" / f"{sid}.jpg")
    os.replace(meta, dest / "metadata" / f"{sid}.json")  # the metadata last: it marks the bin done
    photo.unlink()


def fetch(s3, dest: Path, ids: list[str], workers: int = 16, bucket: str = BUCKET) -> dict[str, int]:
    """Every bin of ``ids`` not yet in ``dest``; {"kept", "fetched", "failed"} counts. A bin that
    cannot be fetched or read is named in the log with the reason and left for the next run."""
    from orchestrate.data.download import download

    todo = [sid for sid in ids if not done(dest, sid)]
    counts = {"kept": len(ids) - len(todo), "fetched": 0, "failed": 0}
    if not todo:
        return counts
    report = download(s3, bucket, todo, dest / STAGING, workers)
    failed = {Path(key).stem for key, _ in report.failed}
    for sid in todo:
        if sid in failed:
            continue
        try:
            convert(dest, sid)
            counts["fetched"] += 1
        except OSError as exc:  # PIL's UnidentifiedImageError is one: a photo that does not decode
            log.error("bin %s: %s; left for the next run", sid, exc)
            failed.add(sid)
    counts["failed"] = len(failed)
    if not any(p.is_file() for p in (dest / STAGING).rglob("*")):
        shutil.rmtree(dest / STAGING)
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dest", type=Path, default=SAMPLE, help=f"default $ABID_SAMPLE or {SAMPLE}")
    p.add_argument("--ids", type=Path, default=IDS, help="bin ids, one per line (default: the shared sample's)")
    p.add_argument("--workers", type=int, default=16)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import boto3

    from orchestrate.core.aws import unsigned_s3
    from orchestrate.core.ids import read_id_list

    ids = read_id_list(args.ids)
    if all(done(args.dest, sid) for sid in ids):
        print(f"sample: all {len(ids)} bins are in {args.dest}; nothing to fetch")
        return 0
    # anonymous, like every read of the public bucket (AWS_ENDPOINT_URL_S3 points it elsewhere)
    counts = fetch(unsigned_s3(boto3.Session(), REGION), args.dest, ids, args.workers)
    print(f"sample: {counts['fetched']} bins fetched, {counts['kept']} already there, {counts['failed']} failed "
          f"-> {args.dest}")
    if counts["failed"]:
        print(f"sample: {counts['failed']} bins failed (named above); run `make sample` again to resume",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
