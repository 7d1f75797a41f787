"""The stratified split: deterministic, stratified, disjoint, written out."""

from __future__ import annotations

import random
from collections import Counter

from bincounter.split import read_manifest, stratified_split, write_manifest


def _labels(n=1000, seed=1):
    rng = random.Random(seed)
    return {f"{i:05d}": rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 5]) for i in range(n)}


def test_same_inputs_give_the_same_split_whatever_the_order():
    labels = _labels()
    shuffled = dict(sorted(labels.items(), key=lambda kv: random.Random(7).random()))
    assert stratified_split(labels, seed=3) == stratified_split(shuffled, seed=3)
    assert stratified_split(labels, seed=3) != stratified_split(labels, seed=4)


def test_every_id_lands_in_exactly_one_split():
    labels = _labels()
    split = stratified_split(labels, seed=0)
    ids = [i for part in split.values() for i in part]
    assert len(ids) == len(set(ids)) == len(labels)


def test_each_split_keeps_the_class_proportions():
    labels = _labels()
    split = stratified_split(labels, seed=0, fractions=(0.8, 0.1, 0.1))
    total = Counter(labels.values())
    for name, frac in (("train", 0.8), ("validation", 0.1), ("test", 0.1)):
        got = Counter(labels[i] for i in split[name])
        for count, n in total.items():
            assert abs(got[count] - n * frac) <= 1, (name, count)


def test_manifest_round_trips(tmp_path):
    labels = _labels(100)
    split = stratified_split(labels, seed=0)
    write_manifest(tmp_path / "split.json", split, labels, 0, (0.8, 0.1, 0.1), source="x")
    assert read_manifest(tmp_path / "split.json") == split
