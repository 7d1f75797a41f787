"""A stack on a moto server for the fault rows: synthetic bins in S3, a random-weight model, and a
transform job whose outputs the real server (batch mode) wrote, as `orchestrate audit` made it."""

from __future__ import annotations

import os
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import boto3

from bincounter.synth import generate
from devtools.local_serve import free_port, start_serve, stop
from devtools.random_model import model_archive, random_model
from orchestrate import cli
from orchestrate.audit import transform_local
from orchestrate.core.store import split_s3
from orchestrate.data import manifest

ROLE = "arn:aws:iam::123456789012:role/bincounter-sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bincounter-serving:1.0"
MODEL_DATA = "s3://models/exp1/model.tar.gz"
PHOTOS, METADATA = "s3://photos/bins/images/", "s3://photos/bins/metadata/"
SETTINGS = ["--set", f"aws.role_arn={ROLE}", "--set", "aws.bucket=models", "--set", "aws.prefix=exp1",
            "--set", "aws.stack=faults", "--set", f"images.serving_image={IMAGE}"]


@dataclass
class Stack:
    session: boto3.Session
    work: Path
    model_dir: Path
    job: str = ""
    bins: int = 0

    def orchestrate(self, *args: str) -> int:
        """One `orchestrate` command on the stack; what it prints goes to ``work/orchestrate.log``."""
        with open(self.work / "orchestrate.log", "a") as log, redirect_stdout(log), redirect_stderr(log):
            return cli.main([*SETTINGS, *args], session=self.session)


@contextmanager
def moto_stack(work: Path, bins: int = 60, size: int = 64):
    """A moto server on loopback with the stack's buckets, ``bins`` synthetic bins and a model;
    the environment points every AWS client at it while the context lasts."""
    from moto.server import ThreadedMotoServer

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")}
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    try:
        session = boto3.Session(region_name="us-east-1")
        s3 = session.client("s3")
        for bucket in ("models", "photos"):
            s3.create_bucket(Bucket=bucket)
        folder = generate(work / "bins", n=bins, seed=5, size=size)
        for sub, prefix in (("images", PHOTOS), ("metadata", METADATA)):
            bucket, key = split_s3(prefix)
            for f in sorted((folder / sub).iterdir()):
                s3.upload_file(str(f), bucket, key + f.name)
        model_dir = random_model(work / "model", arch="resnet18", size=size)
        bucket, key = split_s3(MODEL_DATA)
        s3.put_object(Bucket=bucket, Key=key, Body=model_archive(model_dir))
        yield Stack(session, work, model_dir, bins=bins)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def transform(stack: Stack) -> str:
    """`orchestrate audit` creates the transform job (moto does not run it); the real server in
    batch mode answers every photo as Batch Transform drives it, and its outputs go where the job
    writes. The job's name."""
    assert stack.orchestrate("audit", "--poll-seconds", "0", "--images", PHOTOS, "--metadata", METADATA,
                             "--model-data", MODEL_DATA, "--out", str(stack.work / "created")) == 0
    sm, s3 = stack.session.client("sagemaker"), stack.session.client("s3")
    [summary] = sm.list_transform_jobs()["TransformJobSummaries"]
    job = summary["TransformJobName"]
    output = sm.describe_transform_job(TransformJobName=job)["TransformOutput"]["S3OutputPath"]
    photos = transform_local.top_level_photos(transform_local.materialize(
        s3, manifest.list_images(s3, PHOTOS), stack.work / "photos"))
    with open(stack.work / "serve.log", "wb") as log:
        proc, url = start_serve(stack.model_dir, log, SAGEMAKER_BATCH="true")
        try:
            transform_local.run_attached(url, photos, stack.work / "outputs")
        finally:
            stop(proc)
    bucket, prefix = split_s3(output)
    for out in (stack.work / "outputs").iterdir():
        s3.upload_file(str(out), bucket, f"{prefix}{out.name}")
    stack.job = job
    return job
