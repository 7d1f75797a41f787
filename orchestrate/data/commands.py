"""``orchestrate data`` and ``orchestrate manifest``: config and flags into calls of
``download`` and ``manifest``."""

from __future__ import annotations

import logging

from orchestrate.core import aws
from orchestrate.core.config import Config, ConfigError
from orchestrate.core.ids import read_file_list, read_ids
from orchestrate.data import download, manifest

log = logging.getLogger(__name__)


def cmd_data(args, cfg: Config, sess) -> int:
    d = cfg.data
    source = aws.unsigned_s3(sess, d.source_region, d.source_endpoint_url)
    if d.file_list:
        ids = read_file_list(d.file_list)
    elif d.per_class > 0:
        ids = download.pick_per_class(source, d.source_bucket, d.per_class, d.workers)
    else:
        raise ConfigError("say which bins: data.file_list (--file-list) or data.per_class (--per-class)")
    log.info("%d bins requested from s3://%s", len(ids), d.source_bucket)
    channels = download.run(source, aws.client(sess, "s3"), source_bucket=d.source_bucket, ids=ids,
                            dest=d.local_dir, bucket=cfg.require("aws", "bucket"), prefix=cfg.aws.prefix,
                            seed=d.seed, fractions=tuple(d.fractions), workers=d.workers,
                            skip_failed=args.skip_failed)
    for name, uri in channels.items():
        print(f"{name}\t{uri}")
    return 0


def cmd_manifest(args, cfg: Config, sess) -> int:
    if args.file_list or args.ids:
        built = manifest.build(cfg.data.source_bucket, read_ids(args.file_list or "", args.ids or ""))
    else:
        clients = aws.S3Clients.of_session(sess, cfg.data.source_bucket, cfg.data.source_region,
                                           cfg.data.source_endpoint_url)
        built = manifest.from_listing(manifest.list_images(clients.for_uri(args.listing), args.listing),
                                      args.metadata_prefix)
    if args.out:
        manifest.write(built, args.out)
    uris = manifest.upload(aws.client(sess, "s3"), built, cfg.require("aws", "bucket"),
                           f"{cfg.aws.prefix}/manifests/{args.name}")
    for name, uri in uris.items():
        print(f"{name}\t{uri}")
    return 0
