"""orchestrate.toml < ORCHESTRATE_* env < flags; clear errors for bad settings."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from orchestrate.core.config import Config, ConfigError, load

EXAMPLE = Path(__file__).resolve().parents[2] / "orchestrate.toml"


def test_the_committed_example_config_loads_with_documented_defaults():
    cfg = load(EXAMPLE, env={})
    assert cfg.deploy.instance_type == "ml.m5.large"
    assert cfg.train.spot is True and cfg.train.debugger_rules is False
    assert cfg.data.source_bucket == "aft-vbi-pds"
    assert cfg.function.handler == "handler.lambda_handler"


def test_env_overrides_the_file_and_flags_override_env(tmp_path):
    path = tmp_path / "o.toml"
    path.write_text('[aws]\nbucket = "from-file"\nregion = "eu-west-1"\n[train]\nspot = true\n'
                    '[train.hyperparameters]\nlr = 0.02\n')
    env = {"ORCHESTRATE_AWS_BUCKET": "from-env", "ORCHESTRATE_TRAIN_SPOT": "false",
           "ORCHESTRATE_TUNE_MAX_JOBS": "8"}
    cfg = load(path, env=env, overrides=["aws.bucket=from-flag", "train.hyperparameters.epochs=1"])
    assert (cfg.aws.bucket, cfg.aws.region) == ("from-flag", "eu-west-1")
    assert cfg.train.spot is False and cfg.tune.max_jobs == 8
    assert cfg.train.hyperparameters["lr"] == 0.02 and cfg.train.hyperparameters["epochs"] == "1"


@pytest.mark.parametrize("override, message", [
    ("train.spot=maybe", "train.spot: expected bool, got 'maybe'"),
    ("tune.max_jobs=many", "tune.max_jobs: expected int"),
    ("deploy.instance_typo=x", "unknown setting 'deploy.instance_typo'"),
    ("nosuch.key=1", "unknown setting 'nosuch.key'"),
    ("aws.bucket", "expected section.key=value"),
])
def test_bad_settings_are_refused_by_name(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load(None, env={}, overrides=[override])


def test_a_missing_required_setting_names_the_env_var_and_the_flag():
    cfg = load(None, env={})
    with pytest.raises(ConfigError, match="ORCHESTRATE_AWS_BUCKET or --set aws.bucket="):
        cfg.require("aws", "bucket")


def test_a_named_config_file_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "mine.toml", env={})


@pytest.mark.slow  # two fresh interpreters importing the SageMaker SDK
def test_help_lists_every_command_and_importing_every_module_pulls_in_no_torch():
    import subprocess
    import sys

    root = EXAMPLE.parent
    out = subprocess.run([sys.executable, "-m", "orchestrate", "--help"], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    for command in ("data", "train", "tune", "deploy", "invoke", "lambda", "report", "teardown"):
        assert f"    {command} " in out
    probe = ("import sys, orchestrate.cli, orchestrate.data.download, orchestrate.training.jobs, orchestrate.endpoint.deploy, "
             "orchestrate.endpoint.lambda_fn, orchestrate.training.report, orchestrate.endpoint.teardown; print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_the_example_orchestrate_toml_states_every_setting_at_its_code_default():
    """One fact, two places a reader looks: the example file and config.py's defaults."""
    example = EXAMPLE
    loaded = load(example, env={})
    assert dataclasses.replace(loaded, source="defaults") == Config()
    doc = tomllib.loads(example.read_text())
    for name in ("aws", "images", "data", "train", "tune", "deploy", "audit", "lambda", "costs"):
        section = Config()._section(name)
        missing = {f.name for f in dataclasses.fields(section)} - set(doc[name]) - {"hyperparameters"}
        assert not missing, f"orchestrate.toml's [{name}] does not state {sorted(missing)}"
