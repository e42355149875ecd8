"""List-valued PubMed fields (authors, MeSH, chemicals, keywords, grants): element in, list out."""
from __future__ import annotations

import re
from typing import Any

from pipeline.pubmed.fields import Element, flat_text, leaf_text

_ORCID = re.compile(r"(\d{4})-?(\d{4})-?(\d{4})-?(\d{3}[\dXx])\s*$")


def normalize_orcid(value: str | None) -> str | None:
    """ORCID in any written form (URL, no dashes) -> "0000-0002-1825-0097"; None if not one."""
    if not value:
        return None
    m = _ORCID.search(value.strip())
    return "-".join(m.groups()).upper() if m else None


def _author(a: Element) -> dict[str, Any]:
    """One Author (or Investigator) element -> author dict."""
    last = fore = initials = collective = orcid = None
    affiliations: list[str] = []
    for ch in a:
        tag = ch.tag
        if tag == "LastName":
            last = leaf_text(ch)
        elif tag == "ForeName":
            fore = leaf_text(ch)
        elif tag == "Initials":
            initials = leaf_text(ch)
        elif tag == "AffiliationInfo":
            aff = ch[0] if len(ch) and ch[0].tag == "Affiliation" else None
            text = flat_text(aff)
            if text:
                affiliations.append(text)
        elif tag == "Identifier":
            if orcid is None and ch.get("Source") == "ORCID":
                orcid = normalize_orcid(ch.text)
        elif tag == "CollectiveName":
            collective = flat_text(ch)
    return {"last_name": last, "fore_name": fore, "initials": initials,
            "collective_name": collective, "affiliations": affiliations, "orcid": orcid}


def parse_authors(author_list: Element | None) -> list[dict[str, Any]]:
    """AuthorList -> [{last_name, fore_name, initials, collective_name, affiliations, orcid}]."""
    if author_list is None:
        return []
    return [_author(a) for a in author_list.iterchildren("Author")]


def parse_mesh_headings(mesh_heading_list: Element | None) -> list[dict[str, Any]]:
    """MeshHeadingList -> [{descriptor_ui, name, major, qualifiers: [{ui, name, major}]}]."""
    if mesh_heading_list is None:
        return []
    out = []
    for mh in mesh_heading_list.iterchildren("MeshHeading"):
        heading = None
        quals = []
        for ch in mh:
            if ch.tag == "DescriptorName":
                heading = {"descriptor_ui": ch.get("UI"), "name": leaf_text(ch),
                           "major": ch.get("MajorTopicYN") == "Y", "qualifiers": quals}
            elif ch.tag == "QualifierName":
                quals.append({"ui": ch.get("UI"), "name": leaf_text(ch),
                              "major": ch.get("MajorTopicYN") == "Y"})
        if heading is not None:
            out.append(heading)
    return out


def parse_chemicals(chemical_list: Element | None) -> list[dict[str, Any]]:
    """ChemicalList -> [{ui, name, registry_number}] (registry number "0" -> None)."""
    if chemical_list is None:
        return []
    out = []
    for chem in chemical_list.iterchildren("Chemical"):
        ui = name = reg = None
        for ch in chem:
            if ch.tag == "NameOfSubstance":
                ui, name = ch.get("UI"), leaf_text(ch)
            elif ch.tag == "RegistryNumber":
                reg = leaf_text(ch)
        out.append({"ui": ui, "name": name, "registry_number": None if reg == "0" else reg})
    return out


def parse_keywords(citation: Element) -> list[str]:
    """Keyword texts from every KeywordList child (author and NLM lists), markup flattened."""
    out = []
    for kl in citation.iterchildren("KeywordList"):
        for kw in kl.iterchildren("Keyword"):
            text = flat_text(kw)
            if text:
                out.append(text)
    return out


_GRANT_KEYS = {"GrantID": "grant_id", "Acronym": "acronym", "Agency": "agency",
               "Country": "country"}


def parse_grants(grant_list: Element | None) -> list[dict[str, Any]]:
    """GrantList -> [{grant_id, acronym, agency, country}]."""
    if grant_list is None:
        return []
    out = []
    for g in grant_list.iterchildren("Grant"):
        grant: dict[str, Any] = dict.fromkeys(_GRANT_KEYS.values())
        for ch in g:
            key = _GRANT_KEYS.get(ch.tag)
            if key is not None:
                grant[key] = leaf_text(ch)
        out.append(grant)
    return out
