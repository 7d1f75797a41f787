"""evaluation.md's verdict section on a hand-made card: each count's thresholds, and every
count above its target flagged with n and the interval (no training run)."""

from __future__ import annotations

from bincounter.modelcard import ModelCard
from bincounter.preprocess import PreprocessSpec
from bincounter.training.report import verdict_section
from bincounter.verification import Thresholds, VerdictRule

TARGETS = {"max_false_match": 0.01, "max_false_mismatch": 0.05}


def card_with(per_expected: dict) -> ModelCard:
    point = {"false_match_rate": 0.004, "false_match_n": 3000, "false_mismatch_rate": 0.03, "false_mismatch_n": 2000,
             "false_match_rate_two_off": 0.0, "false_match_two_off_n": 1500, "auto_share": 0.06,
             "per_expected": per_expected}
    return ModelCard(classes=[1, 2, 3, 4, 5], preprocess=PreprocessSpec(112), arch="resnet18",
                     verification=VerdictRule(Thresholds(None, None),
                                              tuple((c, Thresholds(0.9, 0.05 * c)) for c in range(1, 6))),
                     calibration={"temperature": 1.5, "method": "m", "validation_nll_before": 1.5,
                                  "validation_nll_after": 1.4, "test_ece_before": 0.1, "test_ece_after": 0.05,
                                  "ece_bins": 15},
                     operating_point={"targets": TARGETS, "guarantee": "conformal", "promise": "per expected count, "
                                      "in expectation", "method": "conformal", "fitted_on": "validation",
                                      "measured": {"validation": point, "test": point}})


def rates(fm: float, fmm: float) -> dict:
    return {"false_match_rate": fm, "false_match_n": 700, "false_mismatch_rate": fmm, "false_mismatch_n": 400,
            "auto_share": 0.05}


def test_a_count_that_misses_its_target_is_flagged_and_the_others_are_not():
    per = {str(c): rates(0.0, 0.02) for c in range(1, 6)}
    per["1"] = rates(0.0, 0.145)  # 58 of 400 correct asks of count 1 answered mismatch
    text = "\n".join(verdict_section(card_with(per)))
    assert "**Above target on the test split:**" in text
    assert "- expected count 1: false mismatch 14.5 % (58 of 400; 95 % interval" in text
    assert "expected count 2:" not in text
    assert "| 3 | 0.9 | 0.15 |" in text  # each count's own thresholds


def test_a_card_within_every_target_says_so_in_one_line():
    text = "\n".join(verdict_section(card_with({str(c): rates(0.005, 0.04) for c in range(1, 6)})))
    assert "Every expected count is within its targets on the test split." in text and "Above target" not in text
