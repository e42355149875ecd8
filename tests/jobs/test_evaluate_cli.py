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


def test_show_errors_lists_kit_items_with_text(capsys, data_dir):
    gold = str(data_dir / "gold" / "evalkit_CDR_sample.gold.PubTator")
    dner = str(data_dir / "gold" / "evalkit_CDR_sample.test.DNER.PubTator")
    code, out, _ = _run(capsys, "evaluate", "bc5cdr-mention", "--gold", gold, "--pred", dner,
                        "--show-errors", "3")
    info = [line.split("\t") for line in out.splitlines() if line.startswith("INFO")]
    assert code == 0 and len(info) == 3 and "TP: 303" in out
    # the kit's INFO layout (kind, evaluation, pmid, start, end, type) and the mention's text
    assert all(row[1] == "FP" and row[2] == "mention" and row[6] == "Disease" for row in info)
    assert info[0][3:] == ["354896", "265", "275", "Disease", "conditions"]
    code, out, _ = _run(capsys, "evaluate", "bc5cdr-id", "--gold", gold, "--pred", dner,
                        "--show-errors", "500", "--json")
    result = json.loads(out)
    kinds = [e["kind"] for e in result["errors"]]
    assert kinds.count("FP") == result["fp"] == 57 and kinds.count("FN") == result["fn"] == 65
    assert result["errors"][-1]["key"][0] == "Disease" and result["errors"][-1]["key"][1].startswith("MESH:")


def test_bioc_files_score_like_pubtator(capsys, data_dir):
    kit = data_dir / "bc5cdr_eval"
    code, out, _ = _run(capsys, "evaluate", "bc5cdr-relation",
                        "--gold", str(kit / "CDR_sample.gold.BioC.xml"),
                        "--pred", str(kit / "CDR_sample.test.CID.BioC.xml"), "--json")
    assert code == 0 and (json.loads(out)["tp"], json.loads(out)["fp"]) == (90, 533)


def test_align_by_position_reads_biogpt_lines_and_leaves_out_the_rest(capsys, data_dir, tmp_path):
    gold_path = data_dir / "gold" / "biogpt_DDI_valid.json"
    gold = json.loads(gold_path.read_text())
    ids = [k for k, doc in gold.items() if doc["triples"]]
    first, second = gold[ids[0]]["triples"][0], gold[ids[1]]["triples"][0]
    lines = [f"the interaction between {first['drug']} and {first['target']} is {first['interaction']}",
             json.dumps({"triple_list_pred": [{"subject": "failed", "relation": "failed",
                                               "object": "failed"}]}),
             json.dumps({"triple_list_pred": [{"subject": second["drug"], "relation": second["interaction"],
                                               "object": second["target"]}]})]
    pred = tmp_path / "generate.detok.txt"
    pred.write_text("\n".join(lines) + "\n")
    pmids = tmp_path / "test.pmid"
    pmids.write_text("\n".join([ids[0], "not-in-gold", ids[1], *ids[2:]]) + "\n")
    code, out, _ = _run(capsys, "evaluate", "ddi", "--gold", str(gold_path), "--pred", str(pred),
                        "--align-by-position", "--pmids", str(pmids), "--json", "--show-errors", "2")
    r = json.loads(out)
    # three lines: ids[0] (one gold triple found), "not-in-gold" (BioGPT's "missing"), ids[1]
    assert code == 0 and r["n_pred_lines"] == 3 and r["n_missing"] == 1 and r["n_samples"] == 2
    assert r["tp"] == 2 and r["fp"] == 0 and r["precision"] == 1.0
    assert r["fn"] == len({(t["drug"].lower(), t["target"].lower(), t["interaction"])
                           for i in ids[:2] for t in gold[i]["triples"]}) - 2
    assert [e["kind"] for e in r["errors"]] == ["FN", "FN"] and r["errors"][0]["pmid"] == ids[0]
    code, _, err = _run(capsys, "evaluate", "ddi", "--gold", str(gold_path), "--pred", str(pred),
                        "--pmids", str(pmids))
    assert code == 2 and "--align-by-position" in err


def test_ddi_reads_a_run_output_folder_its_ddi_rows_only(capsys, data_dir, tmp_path):
    # `--pred OUT` (a `biomine run` folder): every part file's re-ddi rows, no other task's rows,
    # scored exactly as the same re-ddi rows in one Parquet file
    import pyarrow as pa

    from pipeline.dataflow.outputs import OUT_ARTICLE_SCHEMA
    from pipeline.tasks.re_ddi import RECIPE
    from pipeline.tasks.relation import render_answer

    source = json.loads((data_dir / "gold" / "biogpt_DDI_valid.json").read_text())
    docs = [d for d in source.values() if d["triples"]
            and " and " not in d["triples"][0]["drug"] + d["triples"][0]["target"]][:4]
    gold = {str(pmid): doc for pmid, doc in enumerate(docs, 1)}  # a run holds numeric PMIDs
    gold_path = tmp_path / "gold.json"
    gold_path.write_text(json.dumps(gold))
    ddi, kd = get_task("re-ddi", None), get_task("re-kd-dti", None)
    out, all_ddi = tmp_path / "run", []
    for part, pmids in (("part-a", ["1", "2"]), ("part-b", ["3", "4"])):
        articles, ddi_rows, kd_rows = [], [], []
        for pmid in pmids:
            article = {"pmid": int(pmid), "version": 1, "title": "", "abstract": gold[pmid]["abstract"]}
            first = gold[pmid]["triples"][0]
            answer = render_answer(RECIPE, [(first["drug"].lower(), first["target"].lower(),
                                             first["interaction"])])
            ddi_rows += ddi.parse_outputs(article, answer, model_id="m", run_id="r").rows
            kd_rows += kd.parse_outputs(article, "the interaction between a and b is inhibitor.",
                                        model_id="m", run_id="r").rows
            articles.append({**article, "n_relations": 2})
        for table, rows in (("articles", pa.Table.from_pylist(articles, schema=OUT_ARTICLE_SCHEMA)),
                            ("relations", rows_to_table(ddi_rows + kd_rows, "re-ddi"))):
            (out / table).mkdir(parents=True, exist_ok=True)
            pq.write_table(rows, out / table / f"{part}.parquet")
        all_ddi += ddi_rows
    pq.write_table(rows_to_table(all_ddi, "re-ddi"), tmp_path / "pred.parquet")
    code, folder, _ = _run(capsys, "evaluate", "ddi", "--gold", str(gold_path), "--pred", str(out),
                           "--json")
    _, single, _ = _run(capsys, "evaluate", "ddi", "--gold", str(gold_path),
                        "--pred", str(tmp_path / "pred.parquet"), "--json")
    result = json.loads(folder)
    assert code == 0 and result == json.loads(single)
    assert (result["tp"], result["fp"], result["precision"]) == (4, 0, 1.0)
    assert result["n_samples"] == 4 and result["n_pred_without_gold"] == 0
