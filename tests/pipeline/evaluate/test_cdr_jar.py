"""The official BC5CDR kit's jar as the oracle: on the same files, `biomine evaluate` finds the same
TP/FP/FN items (relation, mention, id; PubTator and BioC). Perturbed predictions are built from
the CDR development set (drop 20 %, add wrong, swap head/tail, unknown ids, documents gold
lacks, shifted offsets, BioGPT answers parsed by our RE parser); all scenarios of one evaluation
share one JVM run (kit.py). Skipped when no Java runtime is present (.ci/run installs one)."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from jobs.evaluate import evaluate
from pipeline.evaluate.cdr_files import compare_files
from pipeline.tasks.pubtator import Document, Mention, Relation, read_pubtator, write_pubtator
from tests.pipeline.evaluate.kit import JAVA, KIT, rename, run_jar, scenario_of, write_bioc

pytestmark = pytest.mark.skipif(JAVA is None, reason="needs a Java runtime for the kit's jar "
                                "(.ci/run installs default-jre-headless)")


def _copy(docs, relations=None, mentions=None):
    return [Document(d.pmid, d.title, d.abstract, list(mentions(d) if mentions else d.mentions),
                     list(relations(d) if relations else d.relations)) for d in docs]


def _every(items, k, offset=0):
    return [x for i, x in enumerate(items) if (i + offset) % k == 0]


def _relation_scenarios(dev, biogpt_docs):
    """(name, gold, pred) for relation CID."""
    chems = sorted({r.id1 for d in dev for r in d.relations})
    other = lambda d: chems[len(d.pmid) * 7 % len(chems)]  # noqa: E731
    return [
        ("identity", dev, dev),
        ("drop 20%", dev, _copy(dev, lambda d: [r for i, r in enumerate(d.relations) if i % 5 != 4])),
        ("add wrong", dev, _copy(dev, lambda d: [*d.relations,
                                                 Relation(d.pmid, "CID", other(d), "D000001"),
                                                 Relation(d.pmid, "CID", "-1", d.relations[0].id2),
                                                 Relation(d.pmid, "CID", "", d.relations[0].id2)])),
        ("swap head/tail", dev, _copy(dev, lambda d: [Relation(r.pmid, r.type, r.id2, r.id1)
                                                      if i % 2 else r for i, r in enumerate(d.relations)])),
        ("MESH: prefixes, other types, scores", dev,
         _copy(dev, lambda d: [Relation(r.pmid, r.type, "MESH:" + r.id1, r.id2, 0.5) for r in d.relations]
               + [Relation(d.pmid, "OTHER", "D1", "D2")])),
        ("documents gold lacks", dev[:250],
         _copy(dev, lambda d: [*d.relations, Relation(d.pmid, "CID", "D999999", "D999998")])),
        ("BioGPT answers through our parser", dev, biogpt_docs),
    ]


def _mention_scenarios(dev):
    return [
        ("identity", dev, dev),
        ("drop 20%", dev, _copy(dev, mentions=lambda d: [m for i, m in enumerate(d.mentions) if i % 5])),
        ("shift and retype", dev, _copy(dev, mentions=lambda d: [
            replace(m, end=m.end + 1) if i % 7 == 0 else
            replace(m, type="Chemical" if m.type == "Disease" else "Disease") if i % 11 == 0 else m
            for i, m in enumerate(d.mentions)])),
        ("add wrong ids and spans", dev, _copy(dev, mentions=lambda d: [
            *[replace(m, concept_id={0: "-1", 1: "D999999", 2: "OMIM:215600", 3: "MESH:" + m.concept_id,
                                     4: m.concept_id + "|D000001"}.get(i % 9, m.concept_id))
              for i, m in enumerate(d.mentions)],
            Mention(d.pmid, 0, 3, d.title[:3], "Disease", "D000002")])),
        ("documents gold lacks", dev[: len(dev) // 2], dev),
    ]


def _batch(tmp_path, name, scenarios, bioc=False):
    gold, pred = [], []
    for i, (_, g, p) in enumerate(scenarios):
        gold += rename(g, i)
        pred += rename(p, i)
    paths = []
    for side, docs in (("gold", gold), ("pred", pred)):
        path = tmp_path / f"{name}.{side}.{'xml' if bioc else 'PubTator'}"
        write_bioc(path, docs) if bioc else write_pubtator(path, docs)
        paths.append(path)
    return paths


def _agree(kind, types, fmt, gold, pred, scenarios, cli=False):
    jar = run_jar(kind, "|".join(types), fmt, gold, pred)
    ours = compare_files(kind, gold, pred, types, fmt)
    group = scenario_of if len(scenarios) > 1 else (lambda pmid: 0)
    for i, (name, _, _) in enumerate(scenarios):
        for label, mine in (("TP", ours.tp), ("FP", ours.fp), ("FN", ours.fn)):
            got = {k for k in mine if group(k[0]) == i}
            want = {k for k in jar[label] if group(k[0]) == i}
            assert got == want, (kind, fmt, name, label, sorted(got ^ want)[:5])
    if cli:  # `biomine evaluate`'s own entry point on the same files
        result = evaluate(f"bc5cdr-{kind}", str(gold), str(pred), list(types), fmt=fmt)
        assert (result["tp"], result["fp"], result["fn"]) == tuple(len(jar[k]) for k in ("TP", "FP", "FN"))
    return ours


@pytest.fixture(scope="module")
def dev(data_dir):
    return read_pubtator(data_dir / "gold" / "CDR_DevelopmentSet.PubTator.txt")


@pytest.fixture(scope="module")
def biogpt_docs(data_dir):
    """BioGPT-style answers for the dev set, perturbed as model output is, parsed and linked."""
    from pipeline.tasks.pubtator import relation_rows_to_documents
    from pipeline.tasks.relation import render_answer
    from pipeline.tasks.rows import get_task
    from tests.pipeline.tasks.test_re_parse import PERTURB, gold_answers

    data = json.loads((data_dir / "gold" / "biogpt_BC5CDR_valid.json").read_text())
    task = get_task("re-bc5cdr", None, entities=data_dir / "gold" / "biogpt_BC5CDR_valid.entities.json")
    hows = list(PERTURB)
    rows = []
    for i, (pmid, (_, triples)) in enumerate(zip(data, gold_answers(data_dir, "re-bc5cdr"))):
        doc = data[pmid]
        article = {"pmid": int(pmid), "title": doc["title"], "abstract": doc["abstract"]}
        answer = PERTURB[hows[i % len(hows)]](render_answer(task.recipe, triples), "re-bc5cdr")
        rows += task.parse_outputs(article, answer, model_id="m", run_id="r").rows
    return relation_rows_to_documents(rows)


@pytest.mark.parametrize("fmt", ["PubTator", "BioC"])
def test_relation_agrees_with_jar(tmp_path, dev, biogpt_docs, fmt):
    bare = _copy(dev, mentions=lambda d: [])  # relation lines only: small files, fast runs
    scenarios = _relation_scenarios(bare, _copy(biogpt_docs, mentions=lambda d: []))
    gold, pred = _batch(tmp_path, "rel", scenarios, bioc=fmt == "BioC")
    ours = _agree("relation", ["CID"], fmt, gold, pred, scenarios)
    assert ours.score.fn > 0 and ours.score.fp > 0 and ours.score.tp > 0


@pytest.mark.parametrize("fmt,types", [("PubTator", ["Disease"]), ("BioC", ["Chemical", "Disease"])])
def test_mention_and_id_agree_with_jar(tmp_path, dev, fmt, types):
    scenarios = _mention_scenarios(dev[:100])  # the jar compares item lists pairwise: keep it small
    gold, pred = _batch(tmp_path, "ent", scenarios, bioc=fmt == "BioC")
    for kind in ("mention", "id"):
        _agree(kind, types, fmt, gold, pred, scenarios)


@pytest.mark.parametrize("fmt", ["PubTator", "BioC"])
def test_kit_sample_files_agree_with_jar(data_dir, fmt):
    """The kit's own samples (its BioC files carry composite and IndividualMention annotations)."""
    if fmt == "BioC":
        gold, cid, dner = (KIT / f"CDR_sample.{n}.BioC.xml" for n in ("gold", "test.CID", "test.DNER"))
    else:
        gold, cid, dner = (data_dir / "gold" / f"evalkit_CDR_sample.{n}.PubTator"
                           for n in ("gold", "test.CID", "test.DNER"))
    scenarios = [("sample", None, None)]
    counts = {}
    for kind, types, pred in (("relation", ["CID"], cid), ("mention", ["Disease"], dner),
                              ("id", ["Disease"], dner)):
        s = _agree(kind, types, fmt, gold, pred, scenarios, cli=True).score
        counts[kind] = (s.tp, s.fp, s.fn)
    assert counts == {"relation": (90, 533, 33), "mention": (303, 105, 121), "id": (149, 57, 65)}
