"""One test per field function, on real sample elements and small inline XML edge cases."""
from __future__ import annotations

import gzip

import pytest
from lxml import etree

from pipeline.pubmed import fields as F
from pipeline.pubmed import lists as L


@pytest.fixture(scope="module")
def baseline(data_dir):
    """PMID -> PubmedArticle element of the 2026 baseline sample."""
    with gzip.open(data_dir / "pubmed" / "pmparser_sample_pubmed26n1334.xml.gz") as f:
        root = etree.parse(f).getroot()
    return {int(a.findtext("MedlineCitation/PMID")): a for a in root.iterchildren("PubmedArticle")}


def x(text: str) -> etree._Element:
    """Inline XML -> element."""
    return etree.fromstring(text)


def art(baseline, pmid):
    """MedlineCitation/Article of a sample record."""
    return baseline[pmid].find("MedlineCitation/Article")


def test_parse_pmid_and_version(baseline):
    assert F.parse_pmid(baseline[41576520].find("MedlineCitation/PMID")) == 41576520
    assert F.parse_version(baseline[41576520].find("MedlineCitation/PMID")) == 1
    assert F.parse_version(x('<PMID Version="3">123</PMID>')) == 3
    assert F.parse_version(x("<PMID>123</PMID>")) == 1
    with pytest.raises(ValueError, match="no PMID"):
        F.parse_pmid(None)
    with pytest.raises(ValueError, match="non-numeric PMID"):
        F.parse_pmid(x("<PMID>12a</PMID>"))


def test_parse_citation_status_and_date_revised(baseline):
    cit = baseline[41576520].find("MedlineCitation")
    assert F.parse_citation_status(cit) == "Publisher"
    assert F.parse_date_revised(cit.find("DateRevised")) == "2026-01-23"
    assert F.parse_date_revised(None) is None


def test_parse_date_forms():
    assert F.parse_date(x("<D><Year>2001</Year><Month>Feb</Month><Day>3</Day></D>")) == "2001-02-03"
    assert F.parse_date(x("<D><Year>2001</Year><Month>11</Month></D>")) == "2001-11"
    assert F.parse_date(x("<D><Year>2001</Year></D>")) == "2001"
    assert F.parse_date(x("<D><Month>11</Month></D>")) is None


def test_parse_title(baseline):
    title = F.parse_title(art(baseline, 41576520).find("ArticleTitle"))
    assert title.startswith("The Relationship of Serum Uric Acid With Neurocognitive")
    assert F.parse_title(art(baseline, 41605226).find("ArticleTitle")) is None  # <ArticleTitle/>


def test_parse_vernacular_and_book_title(baseline):
    vt = F.parse_vernacular_title(art(baseline, 41605226).find("VernacularTitle"))
    assert vt.startswith("Kommentar zu „ABDOMEN BECKEN")
    assert F.parse_book_title(x("<BookTitle>Gene<i>Reviews</i></BookTitle>")) == "GeneReviews"


def test_parse_abstract_sections_structured(baseline):
    sections = F.parse_abstract_sections(art(baseline, 41576520).find("Abstract"))
    assert [s["label"] for s in sections] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert [s["category"] for s in sections] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert sections[1]["text"].startswith("The sample included 593 participants")
    assert F.parse_abstract_sections(None) == []


def test_parse_abstract_flat_with_labels(baseline):
    text = F.parse_abstract(art(baseline, 41576520).find("Abstract"))
    assert text.startswith("BACKGROUND: Pediatric chronic kidney disease")
    assert " METHODS: The sample included 593" in text
    assert "Copyright" not in text  # CopyrightInformation is not abstract text
    assert F.parse_abstract(None) is None
    assert F.parse_abstract(x("<Abstract><AbstractText/></Abstract>")) is None


def test_inline_markup_is_flattened_without_gluing(baseline):
    text = F.parse_abstract(art(baseline, 41603352).find("Abstract"))
    assert "bacterium Mycobacterium tuberculosis (Mtb), infects" in text
    el = x("<AbstractText>CO<sub>2</sub> and <b>bold</b> <i>E. coli</i> <u>under</u>, "
           "10<sup>-3</sup> M</AbstractText>")
    assert F.flat_text(el) == "CO2 and bold E. coli under, 10-3 M"


def test_mathml_flattened_to_spaced_tokens():
    el = x('<AbstractText>We set <mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML">'
           "<mml:mi>x</mml:mi><mml:mo>=</mml:mo><mml:msup><mml:mn>10</mml:mn><mml:mn>2</mml:mn>"
           '</mml:msup><mml:annotation encoding="TeX">x=10^2</mml:annotation></mml:math> here.'
           "</AbstractText>")
    assert F.flat_text(el) == "We set x = 10 2 here."


def test_entities_and_whitespace():
    el = x("<T>A &amp; B &lt;5 &#x3b1;-helix&#160;x &#xa9;\n   two  spaces</T>")
    assert F.flat_text(el) == "A & B <5 α-helix\xa0x © two spaces"
    assert F.flat_text(x("<T>   </T>")) is None


def test_parse_other_abstracts(baseline):
    others = F.parse_other_abstracts(baseline[41583336].find("MedlineCitation"))
    assert len(others) == 1
    assert (others[0]["type"], others[0]["language"]) == ("Publisher", "por")
    assert len(others[0]["sections"]) == 3
    assert others[0]["text"].startswith("Introdução: A perfuração iatrogénica do cólon")
    # and it is kept apart from the English abstract
    assert "perfuração" not in (F.parse_abstract(art(baseline, 41583336).find("Abstract")) or "")


def test_parse_languages(baseline):
    assert F.parse_languages(art(baseline, 41605226)) == ["ger"]
    assert F.parse_languages(x("<Article><Language>eng</Language><Language>fre</Language></Article>")) == ["eng", "fre"]


def test_journal_fields(baseline):
    journal = art(baseline, 41576520).find("Journal")
    assert F.parse_journal_title(journal.find("Title")) == "Pediatric neurology"
    assert F.parse_journal_iso(journal.find("ISOAbbreviation")) == "Pediatr Neurol"
    assert F.parse_issn(journal.find("ISSN")) == "1873-5150"
    assert F.parse_volume(journal.find("JournalIssue/Volume")) == "176"
    assert F.parse_issue(journal.find("JournalIssue/Issue")) is None
    issue = art(baseline, 41578200).find("Journal/JournalIssue/Issue")
    assert F.parse_issue(issue) == "1"


def test_parse_pages(baseline):
    assert F.parse_pages(art(baseline, 41576520).find("Pagination")) == "112-116"
    assert F.parse_pages(x("<Pagination><StartPage>5</StartPage><EndPage>9</EndPage></Pagination>")) == "5-9"
    assert F.parse_pages(None) is None


def test_parse_pub_date_and_year(baseline):
    pd = art(baseline, 41576520).find("Journal/JournalIssue/PubDate")
    assert F.parse_pub_date(pd) == "2026 Jan 07"
    assert F.parse_pub_year(pd) == 2026
    medline = x("<PubDate><MedlineDate>1998 Dec-1999 Jan</MedlineDate></PubDate>")
    assert F.parse_pub_date(medline) == "1998 Dec-1999 Jan"
    assert F.parse_pub_year(medline) == 1998
    assert F.parse_pub_year(x("<PubDate><Season>Spring</Season></PubDate>")) is None


def test_parse_article_date(baseline):
    assert F.parse_article_date(art(baseline, 41576520).find("ArticleDate")) == "2026-01-07"
    assert F.parse_article_date(None) is None


def test_parse_publication_types(baseline):
    assert F.parse_publication_types(art(baseline, 41576520).find("PublicationTypeList")) == ["Journal Article"]
    assert F.parse_publication_types(None) == []


def test_parse_doi_not_overwritten_by_later_elocation(baseline):
    assert F.parse_doi(art(baseline, 41603352)) == "10.7554/eLife.102634"  # doi, then pii
    a = x('<Article><ELocationID EIdType="doi">10.1/a</ELocationID>'
          '<ELocationID EIdType="pii">S0001</ELocationID></Article>')
    assert F.parse_doi(a) == "10.1/a"
    ids = x('<ArticleIdList><ArticleId IdType="pubmed">1</ArticleId>'
            '<ArticleId IdType="doi">10.2/b</ArticleId></ArticleIdList>')
    assert F.parse_doi(x('<Article><ELocationID EIdType="pii">S1</ELocationID></Article>'), ids) == "10.2/b"


def test_parse_pmc_id(baseline):
    assert F.parse_pmc_id(baseline[41578200].find("PubmedData/ArticleIdList")) == "PMC12828940"
    assert F.parse_pmc_id(baseline[41576520].find("PubmedData/ArticleIdList")) is None


def test_parse_authors(baseline):
    authors = L.parse_authors(art(baseline, 41576520).find("AuthorList"))
    assert len(authors) == 8
    first = authors[0]
    assert (first["last_name"], first["fore_name"], first["initials"]) == ("Hooper", "Stephen R", "SR")
    assert first["affiliations"][0].startswith("Department of Health Sciences")
    assert authors[-1]["collective_name"] == "Chronic Kidney Disease in Children (CKiD) Study Investigators"
    assert authors[-1]["last_name"] is None
    gupta = L.parse_authors(art(baseline, 41603352).find("AuthorList"))[0]
    assert gupta["orcid"] == "0000-0001-7917-7877" and len(gupta["affiliations"]) == 2
    assert L.parse_authors(None) == []


def test_normalize_orcid():
    assert L.normalize_orcid("https://orcid.org/0009-0002-9849-360X") == "0009-0002-9849-360X"
    assert L.normalize_orcid("000000021825009x") == "0000-0002-1825-009X"
    assert L.normalize_orcid("not an orcid") is None


def test_parse_mesh_headings(baseline):
    mesh = L.parse_mesh_headings(baseline[41603352].find("MedlineCitation/MeshHeadingList"))
    assert len(mesh) == 13
    assert mesh[0] == {"descriptor_ui": "D000818", "name": "Animals", "major": False, "qualifiers": []}
    assert mesh[1]["name"] == "Mast Cells" and mesh[1]["major"] is True
    assert mesh[1]["qualifiers"] == [{"ui": "Q000276", "name": "immunology", "major": False},
                                     {"ui": "Q000473", "name": "pathology", "major": False}]
    assert L.parse_mesh_headings(None) == []


def test_parse_chemicals(baseline):
    chems = L.parse_chemicals(baseline[41584723].find("MedlineCitation/ChemicalList"))
    assert chems[0] == {"ui": "D062085", "name": "RNA, Long Noncoding", "registry_number": None}
    one = x('<ChemicalList><Chemical><RegistryNumber>7440-70-2</RegistryNumber>'
            '<NameOfSubstance UI="D002118">Calcium</NameOfSubstance></Chemical></ChemicalList>')
    assert L.parse_chemicals(one) == [{"ui": "D002118", "name": "Calcium", "registry_number": "7440-70-2"}]


def test_parse_keywords(baseline):
    kws = L.parse_keywords(baseline[41576520].find("MedlineCitation"))
    assert kws == ["CKiD", "Cognition in CKD", "Mild to moderate CKD", "Pediatric CKD"]
    assert L.parse_keywords(x("<MedlineCitation/>")) == []


def test_parse_grants(baseline):
    grants = L.parse_grants(art(baseline, 41603352).find("GrantList"))
    assert len(grants) == 4
    assert grants[0] == {"grant_id": "HL105427", "acronym": "NH", "agency": "NIH HHS",
                         "country": "United States"}
    assert L.parse_grants(None) == []
