"""``orchestrate shards``: ABID bins -> WebDataset shards and their index (``bincounter.shards``).

- ``--from-dir DIR --out DIR``: a folder of ABID-layout bins, here, without Docker (scripts
  outside the repo call exactly this form);
- ``--manifest S3URI | --file-list F | --ids F | --prefix S3URI`` ``--instance-count N``: a
  SageMaker Processing job on the training image (``shard_job``), shards under ``--out`` S3URI
  (default ``s3://BUCKET/PREFIX/shards/``);
- ``--from-dir DIR --out DIR --local [--instance-count N]``: the same job under the SageMaker
  SDK's local mode, on the training image, its instances reading the folder;
- ``--from-parts DIR --out DIR``: what each instance of that job runs on the part files it got.
"""

from __future__ import annotations

from pathlib import Path

from bincounter.shards import folder_bins, merge_indexes, read_back, write_part
from orchestrate.core import aws
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.ids import read_ids
from orchestrate.core.images import image_uri, local_image
from orchestrate.data import manifest, shard_job


def cmd_shards(args, cfg: Config, sess) -> int:
    if (args.from_dir or args.from_parts) and not args.out:
        raise ConfigError("--out DIR: where the shards go")
    if args.local and not args.from_dir:  # else a --manifest ... --local would start a job in the cloud
        raise ConfigError("--local runs the job on a folder of bins: give --from-dir DIR")
    if args.from_dir and args.local:
        return _local_job(args, cfg)
    if args.from_dir:
        return _from_dir(args)
    if args.from_parts and args.bins:  # an instance of the local-mode job: its bins in a folder
        return _parts(args, lambda ids: shard_job.folder_bins_of(ids, Path(args.bins)), {})
    clients = aws.S3Clients.of_session(sess, cfg.data.source_bucket, cfg.data.source_region,
                                       cfg.data.source_endpoint_url)
    if args.from_parts:
        done = shard_job.finished(clients.for_uri(args.skip_in), args.skip_in) if args.skip_in else {}
        return _parts(args, lambda ids: shard_job.s3_bins(ids, clients, cfg.data.source_bucket), done)
    ids = _ids(args, clients)
    out = args.out or f"{cfg.s3_base}/shards/"
    if not out.startswith("s3://"):
        raise ConfigError("--out: the job writes its shards to an s3:// prefix (a folder: use --from-dir)")
    req = shard_job.start(aws.client(sess, "sagemaker"), aws.client(sess, "s3"), cfg,
                          image_uri(cfg, aws.client(sess, "ecr"), "training"), ids, out, args.instance_count,
                          args.instance_type or shard_job.DEFAULT_INSTANCE, args.shard_mb, args.split_seed)
    parts = req["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    print(f"shards: processing job {req['ProcessingJobName']}: {len(ids):,} bins in part files under {parts}, "
          f"{args.instance_count} instances -> {out}")
    return 0


def _parts(args, bins_of, done: dict) -> int:
    parts = sorted(Path(args.from_parts).glob("part-*.txt"))
    if args.host_share:
        parts = shard_job.host_share(parts, Path(args.host_share))
    for index in shard_job.run_parts(parts, Path(args.out), bins_of, args.shard_mb, args.split_seed, done):
        print(f"part {index['part']}: {len(index['shards'])} shards ({index['skipped']} already finished)")
    return 0


def _local_job(args, cfg: Config) -> int:
    from orchestrate.data import shard_local

    source, out = Path(args.from_dir).resolve(), Path(args.out).resolve()
    ids = sorted(b.bin_id for b in folder_bins(source))
    root = Path(args.local_root).resolve() / aws.unique_name(cfg.aws.stack, "shards")
    shard_local.shards(local_image(cfg, "training"), source, shard_job.parts_of(ids, args.instance_count), out,
                      args.instance_count, args.shard_mb, args.split_seed, cfg.aws.region, root)
    return _report(ids, out, f"a local Processing job on {args.instance_count} instances")


def _ids(args, clients) -> list[str]:
    if args.manifest:
        m = manifest.read(clients.for_uri(args.manifest), args.manifest)
        return [manifest.bin_id(k) for k in m.keys]
    if args.prefix:
        return [manifest.bin_id(k) for k in manifest.list_images(clients.for_uri(args.prefix), args.prefix).keys]
    if args.file_list or args.ids:
        return read_ids(args.file_list or "", args.ids or "")
    raise ConfigError("give the bins: --from-dir DIR, or --manifest / --file-list / --ids / --prefix for a job")


def _from_dir(args) -> int:
    source, out = Path(args.from_dir), Path(args.out)
    if not (source / "images").is_dir():
        raise ConfigError(f"--from-dir {source}: no images/ folder (the ABID layout: images/<id>.jpg, "
                          "metadata/<id>.json)")
    bins = folder_bins(source)
    part = write_part(bins, out, "00000", args.shard_mb, args.split_seed)
    return _report([b.bin_id for b in bins], out, f"{part['skipped']} already finished")


def _report(ids: list[str], out: Path, note: str) -> int:
    """``shards.json`` over every part, and the check that each bin is in exactly one shard (read
    back from the tars) or listed unreadable."""
    index = merge_indexes(out)
    held = read_back(out)
    listed = {u["bin_id"] for u in index["unreadable"]}
    missing = set(ids) - set(held) - listed
    if missing:  # never expected: the writer lists what it cannot pack
        raise ConfigError(f"{len(missing)} bins neither in a shard nor listed unreadable, e.g. {sorted(missing)[0]}")
    t = index["totals"]
    print(f"shards: {len(ids):,} bins -> {sum(v['shards'] for v in t.values())} shards in {out} "
          f"({note}): " + ", ".join(f"{k} {v['bins']:,} bins in {v['shards']}"
                                                              for k, v in t.items()))
    print(f"unreadable: {len(listed)} (listed in {out / 'shards.json'} with the reason)")
    return 0
