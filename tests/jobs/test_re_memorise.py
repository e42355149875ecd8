"""RE learning test, end to end: `biomine train-re` memorises a few BC5CDR training documents
from scratch (a tiny BioGPT-shaped model, CPU, seeded); `biomine run` mines the same documents
from PubMed XML built from their PubTator text, `biomine export` writes PubTator and the official
kit's jar scores the relations. F1 >= 0.9 shows that prompt, targets, loss masking, soft-prompt
tokens, checkpoint averaging, loading, generation, parsing and linking agree with each other."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from jobs.cli import main
from pipeline.tasks.pubtator import read_pubtator, write_pubtator
from pipeline.training.re_data import longest_names, pubtator_records
from tests.jobs.memorise import mine, pubmed_xml, save_random_base, train_memorise
from tests.pipeline.evaluate.kit import JAVA, run_jar

pytestmark = [pytest.mark.ray,
              pytest.mark.skipif(JAVA is None, reason="needs a Java runtime for the kit's jar")]
N_DOCS = 16
EPOCHS = 70


def pick_documents(path: Path, n: int) -> tuple[list, dict]:
    """The n shortest documents whose every CID pair is named, and their entity dictionary."""
    records = pubtator_records(path)
    docs = {d.pmid: d for d in read_pubtator(path)}
    names: dict[str, dict[str, str]] = {"chemical2id": {}, "disease2id": {}}
    chosen = []
    for pmid in sorted(records, key=lambda p: (len(docs[p].title) + len(docs[p].abstract), p)):
        rec, doc = records[pmid], docs[pmid]
        cid = {(r.id1, r.id2) for r in doc.relations if r.type == "CID"}
        if not cid or len(cid) != len({(r["chemical"], r["disease"]) for r in rec["relations"]}):
            continue
        chem, dis = longest_names(rec["chemical2id"]), longest_names(rec["disease2id"])
        if any(names["chemical2id"].get(chem[c], c) != c or names["disease2id"].get(dis[d], d) != d
               for c, d in cid):
            continue  # a name another chosen document links elsewhere
        for c, d in cid:
            names["chemical2id"][chem[c]], names["disease2id"][dis[d]] = c, d
        chosen.append(doc)
        if len(chosen) == n:
            break
    return chosen, names


def test_train_re_memorises_and_mining_scores_with_the_official_jar(ray_cluster, data_dir, tmp_path,
                                                                    capsys):
    docs, names = pick_documents(data_dir / "gold" / "CDR_TrainingSet.PubTator.txt", N_DOCS)
    assert len(docs) == N_DOCS
    gold, entities, xml = tmp_path / "gold.txt", tmp_path / "entities.json", tmp_path / "in.xml"
    write_pubtator(gold, docs)
    entities.write_text(json.dumps(names))
    xml.write_text(pubmed_xml(docs))
    base = save_random_base(tmp_path / "base")
    started = time.perf_counter()
    out = tmp_path / "re"
    assert train_memorise("bc5cdr", gold, base, out, epochs=EPOCHS, lr="1e-2", warmup=100,
                          micro_batch_tokens=250) == 0
    log = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    trained = time.perf_counter() - started
    mined = tmp_path / "mined"
    assert mine(ray_cluster, xml, mined, "--tasks", "re-bc5cdr", "--re-model", str(out),
                "--entities", str(entities), "--max-new-tokens", "96") == 0
    pred = tmp_path / "pred.txt"
    assert main(["export", str(mined), "--format", "pubtator", "-o", str(pred)]) == 0
    items = run_jar("relation", "CID", "PubTator", gold, pred)
    tp, fp, fn = (len(items[k]) for k in ("TP", "FP", "FN"))
    f1 = 2 * tp / max(1, 2 * tp + fp + fn)
    print(f"memorised {N_DOCS} docs: loss {log[-1]['loss']:.3f}, train {trained:.0f}s, "
          f"TP {tp} FP {fp} FN {fn}, F1 {f1:.3f}")
    assert f1 >= 0.9, (items["FP"], items["FN"], log[-1])
