"""Name variants, Schwartz-Hearst abbreviations (real abstracts) and each linker rule."""
from __future__ import annotations

from pipeline.linking.abbreviations import find_abbreviations
from pipeline.linking.apply import link_article_rows
from pipeline.linking.lexicon import Entry
from pipeline.linking.linker import ArticleContext, Linker
from pipeline.linking.normalize import BAG, COMPACT, NORMAL, STEM, keys, permuted
from pipeline.tasks.pubtator import read_pubtator
from tests.pipeline.linking.conftest import GOLD


def test_variant_keys() -> None:
    assert keys("Anaemias")[NORMAL] == keys("anemia")[NORMAL]  # British, plural
    assert keys("TNF-α")[NORMAL] == keys("TNF alpha")[NORMAL]  # Greek
    assert keys("cis-platinum")[COMPACT] == keys("cisplatinum")[COMPACT]  # hyphen/space
    assert keys("tumour of the breast")[BAG] == keys("breast tumors")[BAG]
    assert keys("Oedema")[NORMAL] == "edema" and keys("nephritis")[NORMAL] == "nephritis"
    assert permuted("Carcinoma, Hepatocellular") == "Hepatocellular Carcinoma"
    assert permuted("Receptors, Opioid, mu") is None
    assert keys("Wernicke's encephalopathy")[NORMAL] == keys("Wernicke encephalopathy")[NORMAL]
    assert keys("renal failure")[NORMAL] == keys("kidney failure")[NORMAL]  # organ adjective
    assert keys("muscular rigidity")[NORMAL] == keys("muscle rigidity")[NORMAL]
    assert keys("obese")[STEM] == keys("obesity")[STEM]  # derivational endings
    assert keys("telangiectasia")[STEM] == keys("telangiectasis")[STEM]
    assert keys("thromboembolism")[STEM] == keys("thromboembolic")[STEM]
    assert keys("overactive bladder")[STEM] == keys("overactive bladder syndrome")[STEM]
    assert keys("toxicity")[STEM] == keys("toxic")[STEM] and keys("aspirin")[STEM] == "aspirin"


def test_abbreviations_from_real_abstracts() -> None:
    docs = {d.pmid: d for d in read_pubtator(GOLD / "CDR_DevelopmentSet.PubTator.txt")}
    found = {}
    for doc in docs.values():
        found.update({(doc.pmid, s): lf for s, lf in find_abbreviations(doc.text).items()})
    pb = [lf for (_, s), lf in found.items() if s == "PB"]
    assert "Phenobarbital" in pb
    assert any(s == "NMS" and lf.lower() == "neuroleptic malignant syndrome" for (_, s), lf in found.items())
    text = ("Heat shock protein 70 (HSP70) rises. We gave 5-fluorouracil (5-FU) and interleukin-2 "
            "(IL-2). The patients (n = 12) were seen (see above). HSP (heat shock protein family) too.")
    assert find_abbreviations(text) == {"HSP70": "Heat shock protein 70", "5-FU": "5-fluorouracil",
                                        "IL-2": "interleukin-2", "HSP": "heat shock protein family"}
    # a plural short form need not find its s in the long form, and defines its singular too
    text = "NSAIDs induce ventricular septal defects (VSDs) in rats. A VSD was seen."
    assert find_abbreviations(text) == {"VSDs": "ventricular septal defects", "VSD": "ventricular septal defects"}


def _lex(make_lexicon):  # noqa: ANN001, ANN202
    return make_lexicon([
        Entry("Cisplatin", "D002945", "Chemical", "mesh", 1.0),
        Entry("cis-Platinum", "D002945", "Chemical", "mesh", 0.5),
        Entry("Carcinoma, Hepatocellular", "D006528", "Disease", "mesh", 1.0),
        Entry("Breast Neoplasms", "D001943", "Disease", "mesh", 1.0),
        Entry("breast cancer", "D001943", "Disease", "gold", 1.0),
        Entry("ovarian cancer", "D010051", "Disease", "gold", 1.0),
        Entry("Puromycin Aminonucleoside", "D011692", "Chemical", "mesh", 1.0),
        Entry("Bupropion", "D016642", "Chemical", "mesh", 1.0),
        Entry("Dyskinesia", "D004409", "Disease", "mesh", 1.0),
        Entry("depression", "D003866", "Disease", "gold", 3.0),
        Entry("depression", "D003863", "Disease", "gold", 1.0),
        Entry("Calcium", "D002118", "", "corpus-index", 0.1),
        Entry("hemolytic anemia", "D000743", "Disease", "gold", 1.0),
        Entry("hyperalgesia", "D006930", "Disease", "gold", 1.0),
        Entry("Heparin", "D006493", "Chemical", "mesh", 1.0),
        Entry("Sodium", "D012964", "Chemical", "mesh", 1.0),
    ])


def test_each_rule(make_lexicon) -> None:  # noqa: ANN001
    linker = Linker(_lex(make_lexicon))
    link = linker.link("Cisplatin", "Chemical")
    assert (link.id, link.source, link.score) == ("D002945", "mesh", 1.0)
    assert linker.link("CIS PLATINUM", "Chemical").id == "D002945"  # normalised
    assert linker.link("hepatocellular carcinomas", "Disease").id == "D006528"  # permuted + plural
    assert linker.link("Cisplatin", "Disease") is None  # typed
    assert linker.link("calcium", "Chemical").id == "D002118"  # type unknown: accepted
    ctx = ArticleContext.of("PAN nephrosis", "We gave puromycin aminonucleoside (PAN) to rats.")
    link = linker.link("PAN", "Chemical", ctx)
    assert (link.id, link.source) == ("D011692", "abbreviation")
    assert linker.link("PAN", "Chemical") is None
    composite = linker.link("breast and ovarian cancer", "Disease")
    assert composite.id == "D001943|D010051"
    assert linker.link("bupropion HCl", "Chemical").id == "D016642"  # salt dropped
    assert linker.link("dyskinetic", "Disease").id == "D004409"  # adjective -> noun
    cause = linker.link("ribavirin-induced hemolytic anemia", "Disease")  # the cause dropped
    assert cause.id == "D000743" and cause.score < 1.0
    ctx = ArticleContext.of("t", "an adverse effect: ribavirin-induced hemolytic anemia (RIHA).")
    assert (linker.link("RIHA", "Disease", ctx).id, linker.link("RIHA", "Disease", ctx).source) == (
        "D000743", "abbreviation")  # a long form gets the fallback too
    drop = linker.link("metastatic breast cancer", "Disease")  # leading modifiers dropped
    assert drop.id == "D001943" and drop.score <= 0.6
    assert linker.link("mechanical hyperalgesia", "Disease") is None  # never down to one word
    assert linker.link("unfractionated heparin sodium", "Chemical") is None  # not for chemicals
    assert linker.link("", "Disease") is None


def test_article_indexing_breaks_ties_and_adds_candidates(make_lexicon) -> None:  # noqa: ANN001
    linker = Linker(_lex(make_lexicon))
    plain = linker.link("depression", "Disease")
    assert plain.id == "D003866" and plain.score < 1.0  # ambiguous: weight decides, score lowered
    ctx = ArticleContext.of("t", "a", {"D003863": ("Depression", "")})
    assert linker.link("depression", "Disease", ctx).id == "D003863"
    ctx = ArticleContext.of("t", "a", {"D000077": ("Aspirin", "Chemical")})
    link = linker.link("aspirin", "Chemical", ctx)
    assert (link.id, link.source) == ("D000077", "article-indexing")
    assert linker.link("cisplatin", "Chemical", ctx).id == "D002945"  # never a filter


def test_rows_get_ids_sources_scores(make_lexicon) -> None:  # noqa: ANN001
    linker = Linker(_lex(make_lexicon))
    article = {"title": "Cisplatin and depression", "abstract": "",
               "mesh_headings": [{"descriptor_ui": "D003863", "name": "Depression"}], "chemicals": []}
    rel = {"head_text": "cisplatin", "head_type": "Chemical", "tail_text": "depression",
           "tail_type": "Disease"}
    known = {"head_text": "x", "head_id": "D1", "head_type": "Chemical", "tail_text": "nothing here",
             "tail_type": "Disease"}
    ent = {"text": "Cisplatin", "type": "Chemical"}
    link_article_rows(linker, article, [rel, known], [ent])
    assert (rel["head_id"], rel["head_id_source"]) == ("D002945", "mesh")
    assert rel["tail_id"] == "D003863"  # the article's indexing broke the tie
    assert (known["head_id_source"], known["tail_id"], known["tail_id_source"]) == ("entities", None, None)
    assert (ent["id"], ent["id_source"], ent["id_score"]) == ("D002945", "mesh", 1.0)
