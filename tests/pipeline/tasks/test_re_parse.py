"""Answer parsing on perturbed gold answers: every gold answer of each dev/valid split, with its
final period removed, soft-prompt tokens or `</s>` appended, spaces doubled, or its last clause
cut off, parses back to the gold triples (minus the cut clause)."""
from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pipeline.tasks.re_parse import answer_parts, match_clause, template_pattern
from pipeline.tasks.relation import parse_generation, render_answer, source_text
from pipeline.tasks.rows import get_task

FILES = {"re-bc5cdr": "biogpt_BC5CDR_valid.json", "re-ddi": "biogpt_DDI_valid.json",
         "re-kd-dti": "biogpt_KD-DTI_valid.json"}


def _longest(name2id: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, ident in name2id.items():
        if ident not in out or len(name) > len(out[ident]):
            out[ident] = name
    return out


def gold_answers(data_dir, task_name: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(context, triples in answer order) of every document, as BioGPT's rebuild_data renders them."""
    data = json.loads((data_dir / "gold" / FILES[task_name]).read_text())
    recipe = get_task(task_name, None).recipe
    out = []
    for doc in data.values():
        article = {"title": doc.get("title"), "abstract": doc["abstract"]}
        if task_name == "re-bc5cdr":
            chem, dis = _longest(doc["chemical2id"]), _longest(doc["disease2id"])
            triples = [(chem[r["chemical"]], dis[r["disease"]], "CID") for r in doc["relations"]]
        else:
            text = source_text(article, recipe.title_in_source)
            ordered = sorted(doc["triples"], key=lambda t: text.find(t["drug"]))
            triples = [(t["drug"].lower(), t["target"].lower(), t["interaction"].lower())
                       for t in ordered]
        out.append((f"{doc.get('title') or ''}\n{doc['abstract']}", triples))
    return out


def _cut_last(answer: str, task_name: str) -> str:
    """Cut the last clause inside its relation word: `... is a` / `... exi`."""
    body = answer.rstrip(".")
    if task_name == "re-bc5cdr":
        return body[: -len("ists")]
    cut = body.rfind(" is ") + len(" is ") + 1
    return body[:cut]


PERTURB: dict[str, Callable[[str, str], str]] = {
    "as_is": lambda a, _: a,
    "no_final_period": lambda a, _: a[:-1],
    "learned9": lambda a, _: a + " learned9",
    "learned9_no_period": lambda a, _: a[:-1] + " learned9 learned9",
    "eos": lambda a, _: a + "</s>",
    "double_space": lambda a, _: a.replace(";", ";  "),
    "extra_separators": lambda a, _: a.replace(";", " ;;") + " ",
    "period_separated": lambda a, _: a.replace("; ", ". "),
    "echoed_prompt": lambda a, _: "the source text . learned1 learned2 learned3 learned9 " + a,
    "cut_last_clause": _cut_last,
}


def _unique(triples):
    return list(dict.fromkeys(triples))


@pytest.mark.parametrize("task_name", list(FILES))
@pytest.mark.parametrize("how", list(PERTURB))
def test_perturbed_gold_answers_parse_to_gold(data_dir, task_name, how):
    recipe = get_task(task_name, None).recipe
    wrong, n_docs = [], 0
    for context, triples in gold_answers(data_dir, task_name):
        if not triples:
            continue
        n_docs += 1
        answer = PERTURB[how](render_answer(recipe, triples), task_name)
        found, malformed, _ = parse_generation(recipe, answer, context)
        expected = _unique(triples)
        if how == "cut_last_clause":
            expected = _unique(triples[:-1])
            if triples[-1] in triples[:-1]:  # a repeated last triple survives in its first clause
                expected = _unique(triples)
        if [f[1:] for f in found] != expected or malformed != (how == "cut_last_clause"):
            wrong.append((answer, found, malformed))
    assert n_docs > 40 and wrong == []


def test_finish_reason_decides_an_unterminated_last_clause():
    recipe = get_task("re-kd-dti", None).recipe
    text = "the interaction between a and b is inhibitor; the interaction between c and d is weird"
    assert len(parse_generation(recipe, text, finish_reason="eos")[0]) == 2  # the model ended it
    found, malformed, _ = parse_generation(recipe, text, finish_reason="length")
    assert [f[1:] for f in found] == [("a", "b", "inhibitor")] and malformed == 1
    assert parse_generation(recipe, text)[1] == 1  # unknown: no final "." -> may be cut
    ended = parse_generation(recipe, text + ".", finish_reason="length")
    assert len(ended[0]) == 2 and ended[1] == 0  # a final "." ends the answer


def test_dropped_clause_texts_are_kept_for_inspection():
    task = get_task("re-ddi", None)
    article = {"pmid": 5, "title": "", "abstract": "Aspirin and warfarin."}
    out = task.parse_outputs(article, "the interaction between aspirin and warfarin is effect; "
                             "nonsense here; the interaction between aspirin and warf",
                             model_id="m", run_id="r")
    assert len(out.rows) == 1 and out.malformed == 2
    assert out.dropped == ("nonsense here", "the interaction between aspirin and warf")
    junk = task.parse_outputs(article, "the interaction between aspirin and warfarin is effect. "
                              "learned9 the interaction between", model_id="m", run_id="r")
    assert len(junk.rows) == 1 and junk.dropped == ("the interaction between",)
    empty = task.parse_outputs(article, "learned9 </s>", model_id="m", run_id="r")
    assert empty.rows == [] and empty.malformed == 1 and empty.dropped == ("learned9 </s>",)


def test_answer_parts_and_whole_template():
    assert answer_parts("src learned1 learned2 learned9 we have that x. learned9 y</s>z") == ("x.", ["y"])
    assert answer_parts("</s>x.</s> learned3 junk") == ("x.", [])
    ddi = get_task("re-ddi", None).recipe
    assert match_clause(ddi, " the  interaction between a  and b is  drug  effect ") == [
        ("a", "b", "drug effect")]
    assert match_clause(ddi, "the interaction between a and b") == []
    cdr = template_pattern("the relation between {head} and {tail} exists")
    assert cdr.fullmatch("the relation between a and b exists and more") is None
