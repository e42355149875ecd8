"""RE recipes: gold relations rendered through our templates, parsed back and scored; malformed output."""
from __future__ import annotations

import json

import pytest

from pipeline.evaluate import hard_match
from pipeline.evaluate.cdr import score_relation
from pipeline.tasks.linking import EntityDictionary
from pipeline.tasks.pubtator import Document, Relation, read_pubtator, relation_rows_to_documents, write_pubtator
from pipeline.tasks.relation import answer_text, parse_generation, render_answer, source_text
from pipeline.tasks.rows import RELATION_SCHEMA, get_task, rows_to_table


def _load(data_dir, name):
    return json.loads((data_dir / "gold" / name).read_text())


def _longest_names(name2id: dict[str, str]) -> dict[str, str]:
    """BioGPT's unify_ent2id(method='max'): the longest name of each id."""
    id2name: dict[str, str] = {}
    for name, ident in name2id.items():
        if ident not in id2name or len(name) > len(id2name[ident]):
            id2name[ident] = name
    return id2name


def _cdr_rendered(data):
    """(article, answer text, per-doc dictionary) for every BC5CDR dev document."""
    for pmid, doc in data.items():
        chem, dis = _longest_names(doc["chemical2id"]), _longest_names(doc["disease2id"])
        triples = [(chem[r["chemical"]], dis[r["disease"]], "CID") for r in doc["relations"]]
        article = {"pmid": int(pmid), "version": 1, "title": doc["title"], "abstract": doc["abstract"]}
        yield article, render_answer(get_task("re-bc5cdr", None).recipe, triples), doc


def _cdr_gold(data) -> list[Document]:
    return [Document(pmid, doc["title"], doc["abstract"], [],
                     [Relation(pmid, "CID", r["chemical"], r["disease"]) for r in doc["relations"]])
            for pmid, doc in data.items()]


def test_bc5cdr_gold_round_trip_scores_one(data_dir, tmp_path):
    data = _load(data_dir, "biogpt_BC5CDR_valid.json")
    rows, n_gold = [], sum(len(d["relations"]) for d in data.values())
    for article, answer, doc in _cdr_rendered(data):
        task = get_task("re-bc5cdr", None, entities={"chemical2id": doc["chemical2id"],
                                                     "disease2id": doc["disease2id"]})
        out = task.parse_outputs(article, answer, model_id="m", run_id="r")
        assert out.malformed == 0
        rows.extend(out.rows)
    assert len(rows) == len({(r["pmid"], r["head_id"], r["tail_id"]) for r in rows}) == n_gold
    table = rows_to_table(rows, "re-bc5cdr")
    assert table.schema == RELATION_SCHEMA
    assert all(r["head_type"] == "Chemical" and r["tail_type"] == "Disease" and r["relation"] == "CID"
               for r in rows)
    score = score_relation(_cdr_gold(data), relation_rows_to_documents(rows))
    assert (score.tp, score.fp, score.fn, score.f1) == (n_gold, 0, 0, 1.0)
    # the PubTator writer's file scores the same as the in-memory rows
    write_pubtator(tmp_path / "pred.PubTator", relation_rows_to_documents(rows))
    assert score_relation(_cdr_gold(data), read_pubtator(tmp_path / "pred.PubTator")) == score


def test_bc5cdr_split_dictionary_and_edits_move_scores_by_hand(data_dir):
    data = _load(data_dir, "biogpt_BC5CDR_valid.json")
    entities = EntityDictionary.from_json(data_dir / "gold" / "biogpt_BC5CDR_valid.entities.json")
    task = get_task("re-bc5cdr", None, entities=data_dir / "gold" / "biogpt_BC5CDR_valid.entities.json")
    gold = _cdr_gold(data)
    rows, collisions, n_gold = [], 0, 0
    for article, answer, doc in _cdr_rendered(data):
        chem, dis = _longest_names(doc["chemical2id"]), _longest_names(doc["disease2id"])
        for r in doc["relations"]:
            n_gold += 1
            collisions += (entities.lookup("Chemical", chem[r["chemical"]]) != r["chemical"]
                           or entities.lookup("Disease", dis[r["disease"]]) != r["disease"])
        rows.extend(task.parse_outputs(article, answer, model_id="m", run_id="r").rows)
    # the split-level dictionary maps a few names to another document's id: exactly those miss
    base = score_relation(gold, relation_rows_to_documents(rows))
    assert (base.tp, base.fn) == (n_gold - collisions, collisions)
    # drop 10 correct relations: TP -10, FN +10, FP unchanged
    correct = [r for r in rows if (str(r["pmid"]), r["head_id"], r["tail_id"]) in
               {(d.pmid, x.id1, x.id2) for d in gold for x in d.relations}]
    dropped = [r for r in rows if r not in correct[:10]]
    s = score_relation(gold, relation_rows_to_documents(dropped))
    assert (s.tp, s.fp, s.fn) == (base.tp - 10, base.fp, base.fn + 10)
    # add 3 relations with ids gold lacks: FP +3
    extra = [dict(correct[0], head_text=f"madeupamine{i}", head_id=f"D99999{i}") for i in range(3)]
    s = score_relation(gold, relation_rows_to_documents(rows + extra))
    assert (s.tp, s.fp, s.fn) == (base.tp, base.fp + 3, base.fn)
    # 3 unknown names (no id) with the same disease are one document-level pair "-1": FP +1
    unknown = [dict(correct[0], head_text=f"madeupamine{i}", head_id=None) for i in range(3)]
    s = score_relation(gold, relation_rows_to_documents(rows + unknown))
    assert (s.tp, s.fp, s.fn) == (base.tp, base.fp + 1, base.fn)
    # rename the disease of 5 correct relations to ids gold lacks: TP -5, FP +5, FN +5
    renamed = [dict(r, tail_id=f"D00000{correct.index(r)}") if r in correct[:5] else r for r in rows]
    s = score_relation(gold, relation_rows_to_documents(renamed))
    assert (s.tp, s.fp, s.fn) == (base.tp - 5, base.fp + 5, base.fn + 5)
    assert s.precision == pytest.approx((base.tp - 5) / (base.tp + base.fp))
    assert s.recall == pytest.approx((base.tp - 5) / n_gold)


def _triples_render(task, article, triples):
    text = source_text(article, task.recipe.title_in_source)
    ordered = sorted(triples, key=lambda t: text.find(t["drug"]))  # rebuild_data's sort
    return render_answer(task.recipe, [(t["drug"].lower(), t["target"].lower(),
                                        t["interaction"].lower()) for t in ordered])


@pytest.mark.parametrize("task_name,file", [("re-ddi", "biogpt_DDI_valid.json"),
                                            ("re-kd-dti", "biogpt_KD-DTI_valid.json")])
def test_triple_recipes_round_trip_scores_one(data_dir, task_name, file):
    data = _load(data_dir, file)
    task = get_task(task_name, None)
    pred, gold = {}, {}
    for i, (key, doc) in enumerate(data.items()):
        article = {"pmid": i, "version": 1, "title": doc.get("title"), "abstract": doc["abstract"]}
        gold[str(i)] = [(t["drug"], t["target"], t["interaction"]) for t in doc["triples"]]
        out = task.parse_outputs(article, _triples_render(task, article, doc["triples"]),
                                 model_id="m", run_id="r")
        assert out.malformed == (0 if doc["triples"] else 1)  # an empty answer is malformed
        pred[str(i)] = [(r["head_text"], r["tail_text"], r["relation"]) for r in out.rows]
        assert all(r["task"] == task_name and r["head_type"] == "Drug" for r in out.rows)
    result = hard_match.evaluate(pred, gold)
    assert result["f1"] == 1.0 and result["sample_f1"] == 1.0 and result["fp"] == result["fn"] == 0
    assert result["n_samples"] == sum(1 for d in data.values() if d["triples"])


def test_kd_dti_names_with_and_pick_the_reading_other_clauses_support():
    task = get_task("re-kd-dti", None)
    answer = ("the interaction between x34 and tripartite motif-containing 24 (trim24) is inhibitor; "
              "the interaction between x34 and bromodomain and phd finger containing 1 (brpf1) is inhibitor.")
    found, malformed, _ = parse_generation(task.recipe, answer)
    assert malformed == 0
    assert found[1][1:] == ("x34", "bromodomain and phd finger containing 1 (brpf1)", "inhibitor")
    # alone, the greedy (BioGPT) reading wins
    alone, _, _ = parse_generation(task.recipe, "the interaction between a and b and c is agonist.")
    assert alone[0][1:] == ("a and b", "c", "agonist")


def test_malformed_generations_are_counted_not_raised():
    cdr = get_task("re-bc5cdr", None)
    article = {"pmid": 1, "version": 2, "title": "Lithium and goitre.", "abstract": "Lithium causes goitre."}
    parse = lambda text: cdr.parse_outputs(article, text, model_id="m", run_id="r")  # noqa: E731
    ok = parse("the relation between lithium and goitre exists.")
    assert (len(ok.rows), ok.malformed) == (1, 0)
    assert ok.rows[0]["head_spans"] == [{"section": "title", "start": 0, "end": 7},
                                        {"section": "abstract", "start": 0, "end": 7}]
    assert ok.rows[0]["tail_spans"][0] == {"section": "title", "start": 12, "end": 18}
    assert parse("").malformed == 1 and parse("").rows == []
    assert parse("lithium is bad for you.").malformed == 1
    # truncated: the last clause has no final "." -> counted and dropped
    cut = parse("the relation between lithium and goitre exists; the relation between lithium and goi")
    assert (len(cut.rows), cut.malformed) == (1, 1)
    # a clause off the template among good ones; duplicates collapse to one row
    mixed = parse("the relation between lithium and goitre exists; nonsense here; "
                  "the relation between lithium and goitre exists.")
    assert (len(mixed.rows), mixed.malformed, mixed.rows[0]["clause_index"]) == (1, 1, 0)
    # an echoed prompt (learned tokens) and a conclusion phrase are stripped; no tokens also fine
    echo = parse("lithium and goitre . learned1 learned2 learned9 in conclusion , "
                 "the relation between lithium and goitre exists.")
    assert (len(echo.rows), echo.malformed) == (1, 0)
    assert answer_text("we have that the relation between a and b exists.") == \
        "the relation between a and b exists."
    ddi = get_task("re-ddi", None)
    bad = ddi.parse_outputs(article, "the interaction between lithium and goitre is", model_id="m", run_id="r")
    assert bad.rows == [] and bad.malformed == 1
    with pytest.raises(ValueError, match="no text"):
        cdr.parse_outputs(article, object(), model_id="m", run_id="r")


def test_source_text_follows_rebuild_data():
    art = {"title": "Aspirin and Ulcers", "abstract": "Aspirin causes ulcers."}
    assert source_text(art, True) == "aspirin and ulcers. aspirin causes ulcers."
    assert source_text(dict(art, title="Aspirin: a review?"), True) == \
        "aspirin: a review? aspirin causes ulcers."
    assert source_text(art, False) == "aspirin causes ulcers."
    assert source_text({"title": "Only a title", "abstract": None}, True) == "only a title"
    assert source_text({"title": "Only a title", "abstract": None}, False) == ""


def test_registry_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown task"):
        get_task("re-nope", None)
    with pytest.raises(ValueError, match="unknown options"):
        get_task("re-ddi", None, entitys="x")
    with pytest.raises(ValueError, match="id2label"):
        get_task("ner", None)


@pytest.fixture(scope="module")
def re_tokenizer():
    from model.tokenizer import BioGptTokenizer

    tok = BioGptTokenizer.from_pretrained("microsoft/biogpt")
    tok.add_tokens([f"learned{i}" for i in range(1, 10)])
    return tok


def test_build_inputs_prompt_layout_and_cut(re_tokenizer):
    task = get_task("re-bc5cdr", re_tokenizer)
    learned = list(range(42384, 42393))
    short = {"pmid": 1, "title": "Lithium and goitre", "abstract": "Lithium causes goitre."}
    inp = task.build_inputs(short)
    assert inp.source == "lithium and goitre. lithium causes goitre." and inp.n_cut == 0
    assert inp.prompt_ids == [2, *re_tokenizer.encode(inp.source, add_special_tokens=False), *learned]
    long = {"pmid": 2, "title": "A long one", "abstract": "word " * 900}
    inp = task.build_inputs(long)
    assert len(inp.prompt_ids) == 1 + 640 + 9 and inp.prompt_ids[-10] == re_tokenizer.ellipsis_id
    assert inp.n_cut == len(re_tokenizer.encode(inp.source, add_special_tokens=False)) - 640
    ddi = get_task("re-ddi", re_tokenizer).build_inputs({"pmid": 3, "title": "T", "abstract": None})
    assert ddi.empty and ddi.prompt_ids == []


def test_missing_learned_tokens_is_a_clear_error():
    from model.tokenizer import BioGptTokenizer

    with pytest.raises(ValueError, match="learned1"):
        get_task("re-kd-dti", BioGptTokenizer.from_pretrained("microsoft/biogpt"))
