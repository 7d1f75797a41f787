"""People's counts train: a toolkit run with a ``labels`` channel (bincounter.reviews lines)
and a ``golden`` channel, on synthetic bins whose true counts we know."""

from __future__ import annotations

import json

import pytest

from bincounter.modelcard import ModelCard
from bincounter.reviews import CANT_TELL, MANY, UNRESOLVED, HumanLabel, write_labels
from toolkit_helpers import TINY, make_opt_ml, run_toolkit_train


def recorded(bins, bin_id: str) -> int:
    return json.loads((bins / "metadata" / f"{bin_id}.json").read_text())["EXPECTED_QUANTITY"]


@pytest.mark.slow
def test_a_labels_channel_replaces_recorded_counts_and_golden_bins_never_train(tmp_path, tiny_bins):
    ids = sorted(p.stem for p in (tiny_bins / "metadata").glob("*.json"))
    flipped = ids[:10]                          # people counted one more than the record says
    cant, unresolved, many = ids[10:12], ids[12], ids[13]
    golden = ids[-5:]                           # the stack's evaluation set: never trains
    labels = [HumanLabel(f"images/{i}.jpg", str(recorded(tiny_bins, i) % 5 + 1)) for i in flipped]
    labels += [HumanLabel(f"images/{i}.jpg", CANT_TELL) for i in cant]
    labels += [HumanLabel(f"images/{unresolved}.jpg", UNRESOLVED), HumanLabel(f"images/{many}.jpg", MANY),
               HumanLabel("images/not-in-the-channel.jpg", "3"),
               HumanLabel(f"images/{golden[0]}.jpg", "2")]  # a golden bin a person counted: still never trains
    (tmp_path / "labels").mkdir()
    (tmp_path / "golden").mkdir()
    write_labels(tmp_path / "labels" / "labels.jsonl", labels)
    write_labels(tmp_path / "golden" / "golden.manifest",
                 [HumanLabel(f"images/{i}.jpg", str(recorded(tiny_bins, i)), human=False) for i in golden])
    base = make_opt_ml(tmp_path / "opt_ml", {"training": tiny_bins, "labels": tmp_path / "labels",
                                             "golden": tmp_path / "golden"}, {**TINY, "epochs": "1"})
    proc = run_toolkit_train(base)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    trained = json.loads((base / "output" / "data" / "split.json").read_text())["splits"]
    count_of = {e["id"]: e["count"] for entries in trained.values() for e in entries}
    # the flipped bins train (or are measured) with the person's count, not the record's
    assert {i: count_of[i] for i in flipped} == {i: recorded(tiny_bins, i) % 5 + 1 for i in flipped}
    assert not set(count_of) & {*cant, unresolved, many}   # nothing to train on: dropped
    assert not set(count_of) & set(golden)                 # in no split at all
    assert len(count_of) == 100 - 4 - 5
    provenance = ModelCard.read(base / "model").training["labels"]
    assert provenance["human_counts"] == 10 and provenance["changed"] == 10
    assert provenance["cant_tell"] == 3 and provenance["outside_range"] == 1 and provenance["not_in_channel"] == 1
    assert provenance["golden_dropped"] == 5 and provenance["golden_n"] == 5
    assert len(provenance["golden_sha256"]) == 64
    assert "labels channel: 10 bins train with a person's count (10 differ from the record)" in proc.stdout


@pytest.mark.slow
def test_a_broken_labels_file_fails_the_run_naming_the_file_and_line(tmp_path, tiny_bins):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "people.jsonl").write_text('{"source-ref": "images/00001.jpg"}\n')
    base = make_opt_ml(tmp_path / "opt_ml", {"training": tiny_bins, "labels": tmp_path / "labels"},
                       {**TINY, "epochs": "1"})
    proc = run_toolkit_train(base)
    assert proc.returncode != 0
    failure = (base / "output" / "failure").read_text()
    assert failure.startswith("LabelsError: ") and "people.jsonl:1: not a labels line" in failure
    assert not (base / "model" / "model.onnx").exists()
