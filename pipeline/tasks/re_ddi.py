"""BioGPT's DDI 2013 drug-drug interaction recipe (`re-ddi`): source is the abstract only."""
from __future__ import annotations

import re

from pipeline.tasks.relation import Recipe

RECIPE = Recipe(
    name="re-ddi",
    head_type="Drug",
    tail_type="Drug",
    template=re.compile(r"the interaction between (.*) and (.*) is (.*)"),
    render="the interaction between {head} and {tail} is {relation}",
    clause_sep=r";+(?=\s|$|the\s)|\.\s+(?=the\s+interaction\s+between\s)",  # BioGPT: "; "
    title_in_source=False,
    label_set=frozenset({"advise", "effect", "mechanism", "int"}),
)
