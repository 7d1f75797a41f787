"""The one reader of the bin lists users give (Udacity file lists, id lists)."""

from __future__ import annotations

import json

import pytest

from orchestrate.core import ids
from toolkit_helpers import ROOT


def test_an_id_list_names_each_bin_once_and_refuses_what_is_not_an_id(tmp_path):
    good = tmp_path / "ids.txt"
    good.write_text("# zone A\n00017\n\n00004\n00017\n")
    assert ids.read_id_list(good) == ["00004", "00017"]
    bad = tmp_path / "bad.txt"
    bad.write_text("00004\n../../etc/passwd\n")
    with pytest.raises(ids.IdListError, match="not bin ids"):
        ids.read_id_list(bad)


def test_file_list_entries_that_are_not_metadata_paths_are_refused_by_name(tmp_path):
    bad = tmp_path / "list.json"
    bad.write_text(json.dumps({"1": ["data/metadata/00004.json", "data/images/00005.jpg"]}))
    with pytest.raises(ids.IdListError, match=r"1 entries .*'data/images/00005.jpg'"):
        ids.read_file_list(bad)


def test_the_udacity_file_list_reads_as_10441_ids(tmp_path):
    udacity = ROOT.parent / "shared" / "data" / "udacity_file_list.json"
    if not udacity.is_file():
        pytest.skip(f"{udacity} not found (it lives in ../shared)")
    got = ids.read_file_list(udacity)
    assert len(got) == 10441 and "100313" in got and "1000" in got


def test_read_ids_takes_exactly_one_of_the_two_lists(tmp_path):
    listed = tmp_path / "ids.txt"
    listed.write_text("00004\n")
    assert ids.read_ids(id_list=str(listed)) == ["00004"]
    with pytest.raises(ids.IdListError, match="one of --file-list or --ids"):
        ids.read_ids()
    with pytest.raises(ids.IdListError, match="one of --file-list or --ids"):
        ids.read_ids(file_list=str(listed), id_list=str(listed))
