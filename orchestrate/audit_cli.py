"""The command line of ``orchestrate manifest`` and ``orchestrate audit`` (registered by ``cli``)."""

from __future__ import annotations

import logging

from orchestrate import aws
from orchestrate.config import Config, ConfigError


def cmd_manifest(a, cfg: Config, sess) -> int:
    from orchestrate import manifest

    if a.file_list or a.ids:
        built = manifest.build(cfg.data.source_bucket, read_ids(a))
    else:
        bucket = manifest.split_s3(a.listing)[0]
        lister = aws.s3_for(bucket, aws.client(sess, "s3"), public_s3(cfg, sess), cfg.data.source_bucket)
        built = manifest.from_listing(manifest.list_images(lister, a.listing), a.metadata_prefix)
    if a.out:
        manifest.write(built, a.out)
    uris = manifest.upload(aws.client(sess, "s3"), built, cfg.require("aws", "bucket"),
                           f"{cfg.aws.prefix}/manifests/{a.name}")
    for name, uri in uris.items():
        print(f"{name}\t{uri}")
    return 0


def read_ids(a) -> list[str]:
    from orchestrate.data import read_file_list
    from orchestrate.manifest import read_id_list

    return read_file_list(a.file_list) if a.file_list else read_id_list(a.ids)


def public_s3(cfg: Config, sess):
    return aws.unsigned_s3(sess, cfg.data.source_region, cfg.data.source_endpoint_url)


def cmd_audit(a, cfg: Config, sess) -> int:
    if not a.verbose:  # the SDK logs its config search, compose file and health checks
        for name, level in (("sagemaker", logging.WARNING), ("sagemaker.config", logging.WARNING),
                            ("urllib3.connectionpool", logging.ERROR)):
            logging.getLogger(name).setLevel(level)
    if a.local:
        from orchestrate import audit_local

        if a.job or a.dry_run:
            raise ConfigError("--job and --dry-run concern a SageMaker transform job, not --local")
        from orchestrate.images import local_image

        image = local_image(cfg, "serving")
        # made only when something is in S3: a client looks for credentials (IMDS included)
        audit_local.run(a, cfg, image, lambda: (aws.client(sess, "s3"), public_s3(cfg, sess)))
        return 0
    from orchestrate import audit
    from orchestrate.images import image_uri

    clients = {"sagemaker": aws.client(sess, "sagemaker"), "s3": aws.client(sess, "s3"),
               "public_s3": public_s3(cfg, sess)}
    image = "" if a.job else image_uri(cfg, aws.client(sess, "ecr"), "serving")
    audit.run(a, cfg, clients, image)
    return 0


def add_parsers(add) -> None:
    s = add("manifest", help="manifest files over the public bucket (or any S3 prefix), read in place")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--file-list", metavar="PATH", help="Udacity file_list.json (bins of the source bucket)")
    src.add_argument("--ids", metavar="PATH", help="bin ids of the source bucket, one per line")
    src.add_argument("--listing", metavar="S3URI", help="every photo under s3://bucket/prefix/")
    s.add_argument("--metadata-prefix", default="", metavar="S3URI",
                   help="with --listing: where <id>.json are (default: metadata/ beside bin-images/)")
    s.add_argument("--name", default="abid", help="upload to s3://BUCKET/PREFIX/manifests/NAME/")
    s.add_argument("--out", metavar="DIR", help="also write the manifests here")

    s = add("audit", help="count every bin photo with one Batch Transform job; the bins to recount")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--images", metavar="S3URI|DIR", help="photos under a prefix (with --local also a folder)")
    src.add_argument("--manifest", metavar="S3URI", help="a manifest of photos")
    src.add_argument("--file-list", metavar="PATH", help="Udacity file_list.json: its bins, read in place")
    src.add_argument("--ids", metavar="PATH", help="bin ids of the source bucket, one per line")
    src.add_argument("--job", help="join an existing transform job's outputs again")
    exp = s.add_mutually_exclusive_group()
    exp.add_argument("--metadata", metavar="S3URI|DIR",
                     help="ABID <id>.json files (default: metadata/ beside bin-images/ or images/)")
    exp.add_argument("--expected", metavar="CSV", help="bin_id,expected_quantity (a file or s3://)")
    s.add_argument("--model-data", help="s3://.../model.tar.gz (default: the stack's latest training job's); "
                                        "with --local a model folder or model.tar.gz")
    s.add_argument("--instance-type", dest="audit.instance_type", metavar="TYPE")
    s.add_argument("--instance-count", dest="audit.instance_count", metavar="N")
    s.add_argument("--out", metavar="DIR", help="audit.csv / audit.md / audit.json here (default: audit/JOB)")
    s.add_argument("--local", action="store_true",
                   help="run the transform here with the SageMaker SDK's local mode (Docker)")
    s.add_argument("--endpoint", metavar="URL", help="with --local: a serving container already running in "
                                                    "batch mode (compose's audit profile) instead of the SDK's")
    s.add_argument("--dry-run", action="store_true", help="print the requests, send none")
    s.add_argument("--poll-seconds", type=float, default=30)


COMMANDS = {"manifest": cmd_manifest, "audit": cmd_audit}
