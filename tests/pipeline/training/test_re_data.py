"""RE training data: BioGPT's target strings (checked by hand), PubTator = JSON, sequence layout."""
from __future__ import annotations

import json

import pytest

from pipeline.training.re_data import (IGNORE, load_documents, longest_names, pubtator_records,
                                       recipe_for, target_text)


@pytest.fixture(scope="module")
def cdr_dev(data_dir):
    return {d.doc_id: d for d in load_documents(data_dir / "gold" / "biogpt_BC5CDR_valid.json", "bc5cdr")}


def test_bc5cdr_targets_by_hand(cdr_dev):
    recipe = recipe_for("bc5cdr")
    # relation order as in the file; "lithium carbonate" (D016651) is not "lithium" (D008094)
    assert target_text(recipe, cdr_dev["6794356"]) == (
        "the relation between lithium carbonate and cyanosis exists; "
        "the relation between lithium carbonate and cardiac arrhythmia exists; "
        "the relation between lithium carbonate and neurologic depression exists.")
    assert target_text(recipe, cdr_dev["6504332"]) == "the relation between phenobarbital and dyskinesia exists."
    # longest name per MeSH id: "valproic acid" over "vpa", "ammonia" over "nh3"
    assert target_text(recipe, cdr_dev["6436733"]) == (
        "the relation between valproic acid and drowsiness exists; "
        "the relation between ammonia and drowsiness exists.")
    assert target_text(recipe, cdr_dev["3131282"]) == (
        "the relation between butylated hydroxyanisole and forestomach carcinogenesis exists.")
    assert len(cdr_dev) == 500 and all(target_text(recipe, d).endswith(" exists.") for d in cdr_dev.values())


def test_longest_name_keeps_the_first_on_a_tie():
    assert longest_names({"abc": "D1", "xyz": "D1", "a": "D2", "abcd": "D2"}) == {"D1": "abc", "D2": "abcd"}


def test_ddi_and_kd_dti_targets(data_dir):
    ddi = {d.doc_id: d for d in load_documents(data_dir / "gold" / "biogpt_DDI_valid.json", "ddi")}
    recipe = recipe_for("ddi")
    assert target_text(recipe, ddi["DDI-DrugBank.d108"]) == (
        "the interaction between isocarboxazid and antabuse is advise; "
        "the interaction between isocarboxazid and disulfiram is advise; "
        "the interaction between mao inhibitor and disulfiram is effect; "
        "the interaction between isocarboxazid and psychotropic agents is advise.")
    # sorted by lowercased_text.find(raw drug): capitalised names are not found (-1) and go first,
    # then by first occurrence ("atorvastatin" precedes "colestipol" and "contraceptive")
    clauses = target_text(recipe, ddi["DDI-DrugBank.d140"])[:-1].split("; ")
    assert [c.split(" and ")[0].removeprefix("the interaction between ") for c in clauses] == (
        ["hmg-coa reductase inhibitor"] * 3 + ["atorvastatin"] * 7 + ["colestipol", "contraceptive"])
    assert clauses[3] == "the interaction between atorvastatin and maalox tc is mechanism"
    raw = json.loads((data_dir / "gold" / "biogpt_DDI_valid.json").read_text())
    assert len(ddi) == sum(1 for v in raw.values() if v["triples"])  # documents without triples left out
    kd = {d.doc_id: d for d in load_documents(data_dir / "gold" / "biogpt_KD-DTI_valid.json", "kd-dti")}
    assert target_text(recipe_for("kd-dti"), kd["11069027"]) == (
        "the interaction between drugbank####db01262 and drugbank####be0000892 is inhibitor.")


def test_pubtator_gives_the_json_targets(data_dir):
    gold = data_dir / "gold"
    recipe = recipe_for("bc5cdr")
    for split, json_name, exceptions in (
            ("CDR_DevelopmentSet.PubTator.txt", "biogpt_BC5CDR_valid.json", set()),
            # BioGPT kept "fibrous myopathy" (composite D005355|D009135, no single names) as D005355
            ("CDR_TrainingSet.PubTator.txt", "biogpt_BC5CDR_train.json", {"3800626"})):
        from_json = {d.doc_id: target_text(recipe, d) for d in load_documents(gold / json_name, "bc5cdr")}
        from_pubtator = {d.doc_id: target_text(recipe, d) for d in load_documents(gold / split, "bc5cdr")}
        assert from_json.keys() == from_pubtator.keys() and len(from_json) == 500
        differ = {k for k in from_json if from_json[k] != from_pubtator[k]}
        assert differ == exceptions
    records = pubtator_records(gold / "CDR_DevelopmentSet.PubTator.txt")
    # composite mention with single names in column 7; one without them contributes no name
    assert records["3115150"]["disease2id"]["respiratory depression"] == "D012131"
    assert "choreoathetosis" not in records["9022662"]["disease2id"]
    assert records["9022662"]["relations"] == [{"chemical": "D010389", "disease": "D062787"}]


def test_sequence_layout_and_cuts(cdr_dev):
    from model.tokenizer import BioGptTokenizer
    from pipeline.training.re_data import encode_example
    from pipeline.tasks.relation import build_prompt, learned_ids, source_text

    tok = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    prompt = tok.add_tokens([f"learned{i}" for i in range(1, 10)])
    assert prompt == list(range(42384, 42393)) and learned_ids(tok) == prompt
    recipe = recipe_for("bc5cdr")
    doc = cdr_dev["6504332"]
    ex = encode_example(doc, recipe, tok, prompt)
    target = tok.encode(target_text(recipe, doc), add_special_tokens=False)
    source = tok.encode(source_text(doc.article(), True), add_special_tokens=False)
    assert ex.ids == [2, *source, *prompt, *target, 2] and ex.n_prefix == 1 + len(source) + 9
    # the prefix is exactly the inference prompt of the RE task
    assert ex.ids[:ex.n_prefix] == build_prompt(source_text(doc.article(), True), tok, prompt).prompt_ids
    labels = ex.labels(target_only=True)
    assert labels[:ex.n_prefix - 1] == [IGNORE] * (ex.n_prefix - 1) and labels[ex.n_prefix - 1:] == [*target, 2]
    assert ex.labels(target_only=False) == ex.ids[1:]
    cut = encode_example(doc, recipe, tok, prompt, max_source_tokens=8)  # a long source ends in "..."
    assert cut.ids[1:9] == [*source[:7], tok.ellipsis_id] and cut.ids[9:18] == prompt


def test_bad_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1": {"title": "t", "abstract": "a", "relations": [
        {"chemical": "D1", "disease": "D2"}], "chemical2id": {"x": "D1"}, "disease2id": {}}}))
    with pytest.raises(ValueError, match="bad.json: document 1: relation D1-D2"):
        load_documents(bad, "bc5cdr")
    with pytest.raises(ValueError, match="unknown RE task"):
        load_documents(bad, "chemprot")
    with pytest.raises(ValueError, match="JSON"):
        load_documents(tmp_path / "x.PubTator", "ddi")
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"1": {"abstract": "a", "triples": []}}))
    with pytest.raises(ValueError, match="no document with a relation"):
        load_documents(empty, "ddi")
