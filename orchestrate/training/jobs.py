"""``orchestrate train`` / ``tune``: SageMaker training and tuning jobs with our training image.

``train`` goes through ``sagemaker.core.resources.TrainingJob.create`` because
v3's ``ModelTrainer`` has no debugger arguments (docs/platform.md §2) and we send
the smdebug DebugHookConfig; ``tune`` goes through ``ModelTrainer`` +
``HyperparameterTuner``. Both take a boto3 session; no model logic here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import boto3
from sagemaker.core.debugger.debugger import get_rule_container_image_uri
from sagemaker.core.helper.session_helper import Session
from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter
from sagemaker.core.resources import TrainingJob
from sagemaker.core.shapes import (AlgorithmSpecification, Channel, CheckpointConfig,
                                   CollectionConfiguration, DataSource, DebugHookConfig,
                                   DebugRuleConfiguration, MetricDefinition, OutputDataConfig,
                                   ProfilerConfig, ProfilerRuleConfiguration, ResourceConfig,
                                   S3DataSource, StoppingCondition, Tag)
from sagemaker.core.training.configs import Compute, InputData
from sagemaker.train import ModelTrainer
from sagemaker.train.tuner import HyperparameterTuner

from bincounter.training.debugger import hook_config
from bincounter.training.environment import Layout
from bincounter.training.metriclog import METRIC_DEFINITIONS, OBJECTIVE_METRIC
from orchestrate.core.aws import tags, unique_name
from orchestrate.core.config import Config

log = logging.getLogger(__name__)

CHANNEL_NAMES = ("training", "validation", "test")
# The seed's search space, exactly.
HYPERPARAMETER_RANGES = {
    "lr": ContinuousParameter(0.001, 0.1, scaling_type="Logarithmic"),
    "batch-size": CategoricalParameter([32, 64, 128]),
    "epochs": IntegerParameter(1, 3),
}
# the container paths, as the training contract resolves them on SageMaker
CONTAINER = Layout()
RULE_INSTANCE_TYPE = "ml.t3.medium"


@dataclass(frozen=True)
class JobPlan:
    """Everything that names and places one job."""

    name: str
    image: str
    channels: dict[str, str]
    hyperparameters: dict[str, str]
    # ManifestFile: each channel URI is a manifest naming objects read in place (orchestrate.manifest)
    channel_type: str = "S3Prefix"
    # channels of another S3DataType than channel_type (the calibration prefix beside a manifest)
    channel_types: dict[str, str] = field(default_factory=dict)


def channel_uris(cfg: Config) -> dict[str, str]:
    """Where ``orchestrate data`` put the channels."""
    return {name: f"{cfg.s3_base}/channels/{name}/" for name in CHANNEL_NAMES}


def plan(cfg: Config, image: str, hyperparameters: dict | None = None, kind: str = "train",
         manifest_uri: str = "", calibration_uri: str = "", labels_uri: str = "", golden_uri: str = "") -> JobPlan:
    """``manifest_uri``: one ``training`` channel from a manifest (validation and test are then
    carved from it by the training code's seeded split) instead of ``orchestrate data``'s channels.
    ``calibration_uri``: an S3 prefix in ABID's layout (images/, metadata/) whose bins the
    temperature and verdict thresholds are fitted on instead of the validation split.
    ``labels_uri`` / ``golden_uri``: prefixes of ``bincounter.reviews`` files: people's counts
    replace the recorded ones; the golden set's bins never train."""
    hps = {**cfg.train.hyperparameters, **(hyperparameters or {})}
    channels = {"training": manifest_uri} if manifest_uri else channel_uris(cfg)
    extra = {"calibration": calibration_uri, "labels": labels_uri, "golden": golden_uri}
    channels.update({name: uri for name, uri in extra.items() if uri})
    return JobPlan(name=unique_name(cfg.aws.stack, kind), image=image, channels=channels,
                   hyperparameters={k: str(v) for k, v in hps.items()},
                   channel_type="ManifestFile" if manifest_uri else "S3Prefix",
                   channel_types={name: "S3Prefix" for name, uri in extra.items() if uri})


def _stopping(cfg: Config) -> StoppingCondition:
    if cfg.train.spot:
        return StoppingCondition(max_runtime_in_seconds=cfg.train.max_run_seconds,
                                 max_wait_time_in_seconds=cfg.train.max_wait_seconds)
    return StoppingCondition(max_runtime_in_seconds=cfg.train.max_run_seconds)


def _debug_hook(cfg: Config) -> DebugHookConfig:
    doc = hook_config(CONTAINER.tensors)
    # SageMaker adds <job>/debug-output/ itself; the managed rules' output sits beside it
    return DebugHookConfig(
        s3_output_path=f"{cfg.s3_base}/debug", local_path=doc["LocalPath"],
        hook_parameters=doc["HookParameters"],
        collection_configurations=[CollectionConfiguration(collection_name=c["CollectionName"],
                                                           collection_parameters=c["CollectionParameters"])
                                   for c in doc["CollectionConfigurations"]])


def _rules(cfg: Config, job: str) -> dict:
    """SageMaker Debugger's built-in rules, for accounts that still have Debugger."""
    image = get_rule_container_image_uri("LossNotDecreasing", cfg.aws.region)
    out = f"{cfg.s3_base}/debug/{job}/rules"
    return {
        "debug_rule_configurations": [DebugRuleConfiguration(
            rule_configuration_name="LossNotDecreasing", rule_evaluator_image=image,
            instance_type=RULE_INSTANCE_TYPE, volume_size_in_gb=0, s3_output_path=out,
            rule_parameters={"rule_to_invoke": "LossNotDecreasing", "collection_names": "losses"})],
        "profiler_config": ProfilerConfig(s3_output_path=f"{cfg.s3_base}/profiler/{job}"),
        "profiler_rule_configurations": [ProfilerRuleConfiguration(
            rule_configuration_name="ProfilerReport", rule_evaluator_image=image,
            instance_type=RULE_INSTANCE_TYPE, volume_size_in_gb=0, s3_output_path=out,
            rule_parameters={"rule_to_invoke": "ProfilerReport"})],
    }


def training_job_args(cfg: Config, p: JobPlan) -> dict:
    """The keyword arguments of ``TrainingJob.create`` for one plan."""
    t = cfg.train
    args = dict(
        training_job_name=p.name,
        role_arn=cfg.require("aws", "role_arn"),
        algorithm_specification=AlgorithmSpecification(
            training_image=p.image, training_input_mode="File",
            metric_definitions=[MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in METRIC_DEFINITIONS]),
        hyper_parameters=p.hyperparameters,
        input_data_config=[Channel(channel_name=name, data_source=DataSource(s3_data_source=S3DataSource(
            s3_data_type=p.channel_types.get(name, p.channel_type), s3_uri=uri,
            s3_data_distribution_type="FullyReplicated")))
            for name, uri in p.channels.items()],
        output_data_config=OutputDataConfig(s3_output_path=f"{cfg.s3_base}/output"),
        resource_config=ResourceConfig(instance_type=t.instance_type, instance_count=t.instance_count,
                                       volume_size_in_gb=t.volume_gb),
        stopping_condition=_stopping(cfg),
        enable_managed_spot_training=t.spot,
        # TrainingJob.create validates tags as its own resources.Tag: plain dicts fit it.
        tags=[{"key": x["Key"], "value": x["Value"]} for x in tags(cfg.aws.stack)],
    )
    if t.spot:
        # Training saves and restores its checkpoints there; SageMaker syncs them to S3.
        args["checkpoint_config"] = CheckpointConfig(s3_uri=f"{cfg.s3_base}/checkpoints/{p.name}",
                                                     local_path=str(CONTAINER.checkpoints))
    if t.debug_hook:
        args["debug_hook_config"] = _debug_hook(cfg)
    if t.debugger_rules:
        args.update(_rules(cfg, p.name))
    return args


def train(sess: boto3.Session, cfg: Config, p: JobPlan) -> str:
    """Start one training job; returns its name."""
    TrainingJob.create(session=sess, region=cfg.aws.region, **training_job_args(cfg, p))
    log.info("training job %s started (image %s, %s)", p.name, p.image,
             "managed spot" if cfg.train.spot else "on-demand")
    return p.name


def tuner(sess: boto3.Session, cfg: Config, image: str) -> HyperparameterTuner:
    """The tuner over the seed's ranges; static hyperparameters are the rest the user set."""
    t = cfg.train
    static = {k: str(v) for k, v in t.hyperparameters.items() if k not in HYPERPARAMETER_RANGES}
    trainer = ModelTrainer(
        sagemaker_session=Session(boto_session=sess), role=cfg.require("aws", "role_arn"),
        training_image=image, base_job_name=f"{cfg.aws.stack}-tune",
        compute=Compute(instance_type=t.instance_type, instance_count=t.instance_count,
                        volume_size_in_gb=t.volume_gb, enable_managed_spot_training=t.spot),
        # No checkpoint config: every job of a tuning run would share one S3 prefix, and
        # at most 3 epochs are cheap to redo after a spot interruption.
        stopping_condition=_stopping(cfg),
        output_data_config=OutputDataConfig(s3_output_path=f"{cfg.s3_base}/tuning"),
        hyperparameters=static,
        tags=[Tag(key=x["Key"], value=x["Value"]) for x in tags(cfg.aws.stack)],
    ).with_metric_definitions([MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in METRIC_DEFINITIONS])
    return HyperparameterTuner(
        model_trainer=trainer, objective_metric_name=OBJECTIVE_METRIC, objective_type="Maximize",
        hyperparameter_ranges=dict(HYPERPARAMETER_RANGES), metric_definitions=METRIC_DEFINITIONS,
        strategy=cfg.tune.strategy, max_jobs=cfg.tune.max_jobs, max_parallel_jobs=cfg.tune.max_parallel_jobs,
        tags=tags(cfg.aws.stack))


def tune(sess: boto3.Session, cfg: Config, image: str) -> str:
    """Start the tuning job; returns its name."""
    name = unique_name(cfg.aws.stack, "hpo", limit=32)  # tuning job names: at most 32 characters
    channels = channel_uris(cfg)
    tuner(sess, cfg, image).tune(inputs=[InputData(channel_name=c, data_source=u) for c, u in channels.items()],
                                 job_name=name, wait=False)
    log.info("tuning job %s started: %d jobs, %d in parallel", name, cfg.tune.max_jobs,
             cfg.tune.max_parallel_jobs)
    return name


def best_hyperparameters(sm, tuning_job: str) -> tuple[str, dict[str, str]]:
    """The best training job of a tuning job and its tuned hyperparameters."""
    desc = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job)
    best = desc.get("BestTrainingJob")
    if not best:
        raise RuntimeError(f"tuning job {tuning_job} ({desc['HyperParameterTuningJobStatus']}) "
                           "has no best training job yet")
    return best["TrainingJobName"], dict(best["TunedHyperParameters"])
