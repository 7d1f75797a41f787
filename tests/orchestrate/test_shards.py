"""`orchestrate shards --from-dir DIR --out DIR`: WebDataset shards that hold every bin of the
folder exactly once (read back from the tars) or list it unreadable with the reason, splits in
shards apart by a hash of the id, the index's counts those of the tars, and a run again that
skips finished shards and rewrites a lost one byte for byte."""

from __future__ import annotations

import json
import tarfile

from bincounter.shards import read_back
from bincounter.split import split_of
from bincounter.synth import generate
from orchestrate import cli


def shards(source, out, *extra: str) -> int:
    return cli.main(["shards", "--from-dir", str(source), "--out", str(out), "--shard-mb", "0.2", *extra])


def test_every_bin_is_in_exactly_one_shard_of_its_split_or_listed_unreadable(tmp_path, capsys):
    """Fails if write_shard dropped a bin whose photo it could not decode without listing it."""
    bins = generate(tmp_path / "bins", n=120, seed=4, size=64)
    (bins / "images" / "00003.jpg").write_bytes((bins / "images" / "00003.jpg").read_bytes()[:200])  # cut short
    (bins / "metadata" / "00007.json").unlink()                                                      # no label
    (bins / "images" / "00011.jpg").unlink()                                                         # no photo
    assert shards(bins, tmp_path / "out") == 0
    index = json.loads((tmp_path / "out" / "shards.json").read_text())
    unreadable = {u["bin_id"]: u["reason"] for u in index["unreadable"]}
    assert set(unreadable) == {"00003", "00007", "00011"}
    assert "no metadata" in unreadable["00007"] and "no photo" in unreadable["00011"]
    held = read_back(tmp_path / "out")
    every = {p.stem for p in (bins / "images").glob("*.jpg")} | {p.stem for p in (bins / "metadata").glob("*.json")}
    assert set(held) | set(unreadable) == every and not set(held) & set(unreadable)
    for bin_id, shard in held.items():
        assert shard.startswith(split_of(bin_id) + "-")
    for entry in index["shards"]:  # the index's counts are those of the labels in the tar
        with tarfile.open(tmp_path / "out" / entry["shard"]) as tar:
            labels = [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
        counts = {}
        for label in labels:
            counts[str(label["count"])] = counts.get(str(label["count"]), 0) + 1
        assert entry["counts"] == dict(sorted(counts.items())) and entry["n"] == len(labels)
        assert all(label["metadata"]["EXPECTED_QUANTITY"] == label["count"] for label in labels)
    assert len(index["shards"]) > 3 and {s["split"] for s in index["shards"]} == {"train", "validation", "test"}
    assert "unreadable: 3" in capsys.readouterr().out


def test_a_run_again_skips_finished_shards_and_rewrites_a_lost_one_byte_for_byte(tmp_path, capsys):
    bins = generate(tmp_path / "bins", n=80, seed=6, size=64)
    out = tmp_path / "out"
    assert shards(bins, out) == 0
    first = json.loads((out / "shards.json").read_text())
    lost = out / first["shards"][1]["shard"]
    kept = out / first["shards"][0]["shard"]
    stamp = kept.stat().st_mtime_ns
    lost.unlink()
    capsys.readouterr()
    assert shards(bins, out) == 0
    assert f"({len(first['shards']) - 1} already finished)" in capsys.readouterr().out
    assert kept.stat().st_mtime_ns == stamp
    again = json.loads((out / "shards.json").read_text())
    assert again["shards"] == first["shards"]  # the lost shard's sha256 and bins as before


def test_a_bin_s_split_depends_on_its_id_and_the_seed_only():
    ids = [f"{i:05d}" for i in range(20_000)]
    splits = [split_of(i, 0) for i in ids]
    assert splits == [split_of(i, 0) for i in ids]
    share = {s: splits.count(s) / len(ids) for s in ("train", "validation", "test")}
    assert abs(share["train"] - 0.8) < 0.01 and abs(share["test"] - 0.1) < 0.01
    assert sum(a != b for a, b in zip(splits, (split_of(i, 1) for i in ids))) > 1000


def test_a_folder_without_images_is_one_line(tmp_path, capsys):
    assert shards(tmp_path, tmp_path / "out") == 1
    assert "no images/ folder" in capsys.readouterr().err


def test_local_without_a_folder_is_refused_before_any_job_starts(tmp_path, capsys):
    # without the refusal in cmd_shards, --file-list ... --local goes on to start a cloud job
    (tmp_path / "ids.txt").write_text("00001\n")
    assert cli.main(["shards", "--ids", str(tmp_path / "ids.txt"), "--local"]) != 0
    assert "--local runs the job on a folder of bins: give --from-dir DIR" in capsys.readouterr().err


def test_each_host_takes_a_disjoint_share_of_the_parts_and_together_all(tmp_path):
    from orchestrate.data.shard_job import host_share

    parts = [tmp_path / f"part-{n:05d}.txt" for n in range(5)]
    shares = []
    for host in ("algo-2", "algo-1", "algo-3"):  # the order hosts are listed in does not matter
        config = tmp_path / f"{host}.json"
        config.write_text(json.dumps({"current_host": host, "hosts": ["algo-3", "algo-1", "algo-2"]}))
        shares.append(host_share(parts, config))
    assert sorted(p for share in shares for p in share) == parts
    assert shares[1] == [parts[0], parts[3]]  # algo-1, first of the sorted hosts
