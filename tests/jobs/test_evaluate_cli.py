"""`biomine evaluate`: kit numbers through the CLI, --json output, BioGPT-style DDI/KD-DTI scoring."""
from __future__ import annotations

import json

import pyarrow.parquet as pq

from jobs.cli import main
from pipeline.tasks.rows import get_task, rows_to_table


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bc5cdr_relation_text_and_json(capsys, data_dir):
    gold = str(data_dir / "gold" / "evalkit_CDR_sample.gold.PubTator")
    pred = str(data_dir / "gold" / "evalkit_CDR_sample.test.CID.PubTator")
    code, out, _ = _run(capsys, "evaluate", "bc5cdr-relation", "--gold", gold, "--pred", pred)
    assert code == 0
    assert "TP: 90\nFP: 533\nFN: 33\nPrecision: 0.14446227929373998\nRecall: 0.7317073170731707" in out
    code, out, _ = _run(capsys, "evaluate", "bc5cdr-mention", "--gold", gold, "--pred",
                        str(data_dir / "gold" / "evalkit_CDR_sample.test.DNER.PubTator"), "--json")
    result = json.loads(out)
    assert code == 0 and set(result) == {"tp", "fp", "fn", "precision", "recall", "f1"}
    assert (result["tp"], result["fp"], result["fn"]) == (303, 105, 121)


def test_kd_dti_rows_parquet_scored_against_gold(capsys, data_dir, tmp_path):
    gold_path = data_dir / "gold" / "biogpt_KD-DTI_valid.json"
    gold = json.loads(gold_path.read_text())
    task = get_task("re-kd-dti", None)
    rows = []
    for pmid, doc in list(gold.items())[:40]:  # predictions for 40 documents; the rest are missed
        answer = "; ".join(f"the interaction between {t['drug'].lower()} and {t['target'].lower()} "
                           f"is {t['interaction'].lower()}" for t in doc["triples"]) + "."
        article = {"pmid": int(pmid), "version": 1, "title": doc["title"], "abstract": doc["abstract"]}
        rows.extend(task.parse_outputs(article, answer, model_id="m", run_id="r").rows)
    pq.write_table(rows_to_table(rows, "re-kd-dti"), tmp_path / "pred.parquet")
    code, out, _ = _run(capsys, "evaluate", "kd-dti", "--gold", str(gold_path),
                        "--pred", str(tmp_path / "pred.parquet"), "--json")
    result = json.loads(out)
    assert code == 0 and result["precision"] == 1.0 and 0 < result["recall"] < 1
    assert result["n_samples"] == len(gold) and len(result["samples"]) == len(gold)
    perfect = [s for s in result["samples"] if s["f1"] == 1.0]
    assert len(perfect) == 40 and sum(s["f1"] for s in result["samples"]) == 40


def test_bad_input_is_one_clear_error(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    code, _, err = _run(capsys, "evaluate", "ddi", "--gold", str(bad), "--pred", str(bad))
    assert code == 2 and "bad.json" in err and "keyed by document id" in err
    code, _, err = _run(capsys, "evaluate", "bc5cdr-id", "--gold", str(tmp_path / "nope"),
                        "--pred", str(bad))
    assert code == 2 and "not found" in err
