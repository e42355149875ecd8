"""DDI RE learning test, end to end: `biomine train-re --task ddi` memorises a few short DDI 2013
training documents (BioGPT's preprocessed JSON, tests/data/gold/biogpt_DDI_train.json) from
scratch (a tiny BioGPT-shaped model, CPU, seeded); `biomine run --tasks re-ddi` mines the same
documents from PubMed XML built from their text, and `biomine evaluate ddi` scores the run's
output folder against them with BioGPT's hard match. F1 >= 0.9 shows that the DDI prompt
(abstract only), targets, loss masking, soft-prompt tokens, checkpoint averaging, loading,
generation, parsing and the scorer's reading of a run folder agree with each other.

DDI documents are keyed by corpus ids ("DDI-DrugBank.d96", "DDI-MedLine.d18"), not PMIDs, while
PubMed XML needs a numeric PMID and `biomine evaluate` matches predictions to gold by document
key. So each chosen document gets a synthetic PMID, 1,000,000 + N for DDI-DrugBank.dN and
2,000,000 + N for DDI-MedLine.dN, and the test writes the chosen documents as a gold JSON in
BioGPT's layout keyed by that PMID ("pmid" holds it too, "ddi_id" keeps the corpus id). The same
file is the training data of `train-re` and the gold of `evaluate`.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from jobs.cli import main
from tests.jobs.memorise import mine, pubmed_xml, save_random_base, train_memorise

pytestmark = pytest.mark.ray
N_DOCS = 16
MAX_TRIPLES = 3  # a longer list (DDI-DrugBank.d9: five drugs after "azlocillin") needs more epochs
EPOCHS = 30  # one update per document (batches of one), lr 3e-3: train loss ~0.02 by epoch 28
_DDI_ID = re.compile(r"DDI-(DrugBank|MedLine)\.d(\d+)")


def synthetic_pmid(ddi_id: str) -> int:
    """DDI-DrugBank.dN -> 1,000,000 + N; DDI-MedLine.dN -> 2,000,000 + N."""
    m = _DDI_ID.fullmatch(ddi_id)
    if m is None:
        raise ValueError(f"not a DDI 2013 document id: {ddi_id!r}")
    return (1_000_000 if m[1] == "DrugBank" else 2_000_000) + int(m[2])


def pick_documents(path: Path, n: int) -> dict[str, dict]:
    """The n shortest documents (then by id) with 1 to MAX_TRIPLES triples, a text no earlier
    pick has, and every drug and target written in the text and free of " and " and ";" (which
    the RE parser splits answers on); BioGPT's layout keyed by synthetic PMID."""
    data = json.loads(path.read_text(encoding="utf-8"))
    chosen: dict[str, dict] = {}
    texts = set()
    for ddi_id in sorted(data, key=lambda k: (len(data[k]["abstract"]), k)):
        doc = data[ddi_id]
        text = doc["abstract"].lower()
        names = {name.lower() for t in doc["triples"] for name in (t["drug"], t["target"])}
        if (not 0 < len(doc["triples"]) <= MAX_TRIPLES or text in texts
                or any(name not in text or " and " in name or ";" in name for name in names)):
            continue
        texts.add(text)
        pmid = str(synthetic_pmid(ddi_id))
        chosen[pmid] = {"pmid": pmid, "ddi_id": ddi_id, "abstract": doc["abstract"],
                        "triples": doc["triples"]}
        if len(chosen) == n:
            break
    return chosen


def test_train_re_ddi_memorises_and_biomine_evaluate_scores_the_run(ray_cluster, data_dir, tmp_path,
                                                                    capsys):
    started = time.perf_counter()
    docs = pick_documents(data_dir / "gold" / "biogpt_DDI_train.json", N_DOCS)
    assert len(docs) == N_DOCS
    gold, xml = tmp_path / "gold.json", tmp_path / "in.xml"
    gold.write_text(json.dumps(docs))
    xml.write_text(pubmed_xml([SimpleNamespace(pmid=pmid, title="", abstract=doc["abstract"])
                               for pmid, doc in docs.items()]))
    base = save_random_base(tmp_path / "base")
    out = tmp_path / "re"
    assert train_memorise("ddi", gold, base, out, epochs=EPOCHS, lr="3e-3", warmup=50,
                          micro_batch_tokens=1) == 0
    log = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    trained = time.perf_counter() - started
    mined = tmp_path / "mined"
    assert mine(ray_cluster, xml, mined, "--tasks", "re-ddi", "--re-model", str(out),
                "--max-new-tokens", "64") == 0
    capsys.readouterr()  # the run's summary
    assert main(["evaluate", "ddi", "--gold", str(gold), "--pred", str(mined), "--json",
                 "--show-errors", "20"]) == 0
    score = json.loads(capsys.readouterr().out)
    with capsys.disabled():
        print(f"\nmemorised {N_DOCS} DDI docs: loss {log[-1]['loss']:.3f}, train {trained:.0f}s, "
              f"wall {time.perf_counter() - started:.0f}s, TP {score['tp']} FP {score['fp']} "
              f"FN {score['fn']}, F1 {score['f1']:.3f}")
    assert score["n_samples"] == N_DOCS and score["n_pred_without_gold"] == 0
    assert score["f1"] >= 0.9, (score["errors"], log[-1])
