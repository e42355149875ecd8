"""An output keeps the settings it was started with: a restart with others is refused naming what
differs and how to resume (an output started before runs linked by default resumes with
--lexicon none)."""
from __future__ import annotations

import json

import pytest

from pipeline.config import RunConfig
from pipeline.dataflow.build import _run_id
from pipeline.storage import Location


def test_a_restart_with_other_settings_names_the_difference(tmp_path):
    out = Location.open(tmp_path / "out")
    old = {"tasks": ["ner"], "re_model": None, "ner_model": "bundled:cdr-small", "entities": None}
    out.write_text("_run.json", json.dumps({"run_id": "r-old", "settings": old}))
    now = RunConfig(inputs=["x"], output=str(tmp_path / "out"), tasks=["ner"])  # links by default
    with pytest.raises(ValueError, match=r"lexicon None -> 'bundled:cdr-do'.*--lexicon none") as err:
        _run_id(now, out)
    assert "tasks" not in str(err.value).split("settings:")[1].split(";")[0]  # only what differs
    assert _run_id(now.model_copy(update={"lexicon": None}), out) == "r-old"
    fresh = Location.open(tmp_path / "new")
    first = _run_id(now, fresh)
    assert _run_id(now, fresh) == first
    assert json.loads(fresh.read_text("_run.json"))["settings"]["lexicon"] == "bundled:cdr-do"
