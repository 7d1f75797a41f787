"""The recipe benchmark's own logic: how a lever is named and when a recipe counts as better."""

import argparse
import json

import pytest

from benchmarks.bench_train import main, parse_variant, summarise


def test_a_variant_is_ours_with_the_named_hyperparameters_changed():
    assert parse_variant("noaug-lr02:augment=false,lr=0.02") == ("noaug-lr02", {"augment": "false", "lr": "0.02"})


@pytest.mark.parametrize("text", ["noaug", "x:no-such-param=1", "seed:augment=false", "x:lr=", ":lr=0.1",
                                  "x:lr=fast", "x:lr=-1", "x:head=mixture"])
def test_a_variant_that_is_not_a_new_name_with_valid_hyperparameters_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_variant(text)


def _run(recipe, seed, accuracy, rmse, auto):
    return {"budget": "6x112", "recipe": recipe, "seed": seed, "accuracy": accuracy, "rmse": rmse,
            "auto_share": auto, "false_match": 0.005, "false_mismatch": 0.03, "asks": [1032, 600], "seconds": 250}


def test_a_recipe_is_better_only_when_every_gain_exceeds_the_seed_to_seed_spread():
    seed = [_run("seed", 0, 0.34, 1.25, 0.070), _run("seed", 1, 0.36, 1.27, 0.074)]
    clear = [_run("clear", 0, 0.40, 1.10, 0.100), _run("clear", 1, 0.41, 1.11, 0.101)]
    # beats the mean by 1 point, inside the seed recipe's 2-point spread
    close = [_run("close", 0, 0.36, 1.10, 0.100), _run("close", 1, 0.36, 1.11, 0.101)]
    # a third recipe's wide spread is its own noise, not the yardstick of the others
    noisy = [_run("noisy", 0, 0.20, 1.60, 0.02), _run("noisy", 1, 0.50, 1.00, 0.20)]
    table = summarise(seed + clear + close + noisy)
    assert "clear's gain over seed at 6x112" in table
    verdicts = {line.split("'")[0]: line for line in table.splitlines() if "gain over seed" in line}
    assert verdicts["clear"].endswith("better on all three, beyond the seed noise")
    assert verdicts["close"].endswith("NOT better on all three beyond the seed noise")
    assert verdicts["noisy"].endswith("NOT better on all three beyond the seed noise")
    assert "| clear | 2 | 0.4050 (0.0100)" in table


def test_combine_tabulates_runs_from_several_invocations_without_training(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps([_run("seed", 0, 0.34, 1.25, 0.07)]))
    second.write_text(json.dumps([_run("seed", 2, 0.36, 1.23, 0.08)]))
    assert main(["--combine", str(first), str(second), "--data", str(tmp_path / "absent")]) == 0
    assert "| seed | 2 | 0.3500 (0.0200)" in capsys.readouterr().out


def test_combine_names_older_ours_runs_for_the_rate_they_ran_at(tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text(json.dumps([_run("ours", 0, 0.34, 1.25, 0.07), _run("seed", 0, 0.33, 1.26, 0.07)]))
    assert main(["--combine", str(old)]) == 0
    table = capsys.readouterr().out
    assert "| ours-lr0.05 | 0 |" in table and "| ours |" not in table


def test_two_runs_under_one_name_are_refused_before_any_training(tmp_path):
    with pytest.raises(SystemExit) as refused:  # (without the check: "no ABID sample at ...")
        main(["--variant", "x:lr=0.02", "--variant", "x:lr=0.01", "--data", str(tmp_path / "absent")])
    assert refused.value.code == 2  # argparse's usage error
