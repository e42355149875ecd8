"""Engine counters from GPU actors to the manifest: per-actor files, summed since the run began."""
from __future__ import annotations

import json
import time

from pipeline.records.engine_stats import collect_engine_counters, engine_summary, write_actor_counters


def counts(steps: int, live: int, computed: int, slots: int = 4) -> dict:
    return {"slots": slots, "decode_steps": steps, "decode_live_rows": live,
            "decode_rows_computed": computed, "prefill_steps": 1, "prefill_tokens": 10,
            "prefill_padded_tokens": 12, "generated_tokens": live, "sequences": 2}


def test_actor_files_are_summed_and_kept_per_actor(tmp_path):
    out = str(tmp_path)
    begin = time.time()
    write_actor_counters(out, "a1", begin, {**counts(10, 36, 40), "stage_calls": 3, "peak_calls_in_flight": 3})
    write_actor_counters(out, "a2", begin, counts(5, 20, 20))
    write_actor_counters(out, "a2", begin, {**counts(6, 24, 24), "stage_calls": 5,
                                            "peak_calls_in_flight": 2})  # a later write replaces the earlier
    engine = collect_engine_counters(out, begin)
    assert sorted(engine["per_actor"]) == ["a1", "a2"]
    assert engine["slots"] == 8 and engine["decode_steps"] == 16 and engine["decode_live_rows"] == 60
    assert engine["decode_occupancy"] == 60 / (10 * 4 + 6 * 4)
    assert engine["decode_row_efficiency"] == 60 / 64
    assert engine["per_actor"]["a2"]["decode_occupancy"] == 1.0
    assert engine["stage_calls"] == 8 and engine["peak_calls_in_flight"] == 3  # summed; the highest
    assert "0.938" in engine_summary(engine) and "2 GPU actor(s)" in engine_summary(engine)
    assert "up to 3 batches in flight" in engine_summary(engine)
    assert not list((tmp_path / "_engine").glob("*.tmp"))  # atomic writes leave nothing behind


def test_files_of_an_earlier_attempt_are_left_out(tmp_path):
    out = str(tmp_path)
    write_actor_counters(out, "old", 0.0, counts(10, 40, 40))
    path = tmp_path / "_engine" / "old.json"
    record = json.loads(path.read_text())
    record["written_at"] = 1.0  # written long before this attempt began
    path.write_text(json.dumps(record))
    (tmp_path / "_engine" / "x.json.1234.tmp").write_text("{")  # a write in progress
    engine = collect_engine_counters(out, time.time() - 1)
    assert engine["per_actor"] == {} and engine["decode_steps"] == 0
    assert engine["decode_occupancy"] is None and engine_summary(engine) == "no decode steps"
    assert collect_engine_counters(str(tmp_path / "none"), 0.0)["per_actor"] == {}
