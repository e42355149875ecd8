"""BioGPT's KD-DTI drug-target interaction recipe (`re-kd-dti`): inhibitor, antagonist, agonist, ..."""
from __future__ import annotations

import re

from pipeline.tasks.relation import Recipe

RECIPE = Recipe(
    name="re-kd-dti",
    head_type="Drug",
    tail_type="Target",
    template=re.compile(r"the interaction between (.*) and (.*) is (.*)"),
    render="the interaction between {head} and {tail} is {relation}",
    clause_sep=r";+(?=\s|$|the\s)|\.\s+(?=the\s+interaction\s+between\s)",  # BioGPT: "; "
    title_in_source=True,
    # every interaction in KD-DTI's valid split (an unterminated last clause must end in one)
    label_set=frozenset({
        "inhibitor", "antagonist", "agonist", "modulator", "binder", "positive allosteric modulator",
        "cofactor", "activator", "ligand", "inducer", "antibody", "negative modulator", "adduct",
        "blocker", "other", "product of", "other/unknown", "chelator", "partial agonist",
        "allosteric modulator", "stimulator", "downregulator", "potentiator",
        "cross-linking/alkylation", "substrate", "intercalation", "chaperone", "partial antagonist",
        "multitarget", "enhancer", "suppressor", "weak inhibitor", "inverse agonist", "regulator",
        "unknown", "opener", "binding"}),
)
