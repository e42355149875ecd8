"""Two updaters racing on one STATE (local folder and S3): exactly one commits each generation."""
from __future__ import annotations

import threading
import time

import pytest

from pipeline.state.apply import apply_file
from pipeline.state.store import StateConflict, StateStore
from tests.pipeline.state.crash_driver import LAYOUT
from tests.pipeline.state.synth import update_file

SETTINGS = {"tasks": ["ner"]}


@pytest.fixture(params=["local", "s3"])
def state_uri(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "state")
    return request.getfixturevalue("s3").uri(f"state-{request.node.name[-3:-1]}-{time.time_ns()}")


def test_racing_updates_one_commits_the_other_fails_cleanly(state_uri):
    StateStore(state_uri).open(SETTINGS, LAYOUT)
    stores = [StateStore(state_uri) for _ in range(2)]
    states = [s.open(SETTINGS, LAYOUT) for s in stores]  # both start from generation 0
    ready = threading.Barrier(2)
    results: dict[int, object] = {}
    real_commit = StateStore.commit

    def commit(self, state, ops):  # both have staged everything before either commits
        ready.wait(timeout=60)
        time.sleep(0.3 * stores.index(self))  # moto checks If-None-Match without a lock
        return real_commit(self, state, ops)

    def one(i: int) -> None:
        upd = update_file(i, f"pubmed26n{i:04d}.xml")
        try:
            results[i] = apply_file(stores[i], states[i], upd["name"], upd["new"], upd["deletions"])[0]
        except StateConflict as exc:
            results[i] = exc

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(StateStore, "commit", commit)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert isinstance(results[1], StateConflict) and "committed nothing" in str(results[1])
    assert results[0]["generation"] == 1
    final = StateStore(state_uri)
    state = final.open(SETTINGS, LAYOUT)
    assert state == results[0]  # the loser left no trace in the state
    assert [p["file"] for p in state["processed"]] == ["pubmed26n0000.xml"]
    assert not final.loc.list("_staging")
    upd = update_file(1, "pubmed26n0001.xml")  # the loser's rerun goes on from generation 1
    state, _ = apply_file(final, state, upd["name"], upd["new"], upd["deletions"])
    assert state["generation"] == 2 and len(state["processed"]) == 2
