"""BioGPT's BC5CDR chemical-induced-disease recipe (`re-bc5cdr`): relation "CID"."""
from __future__ import annotations

import re

from pipeline.tasks.relation import Recipe

RECIPE = Recipe(
    name="re-bc5cdr",
    head_type="Chemical",
    tail_type="Disease",
    template=re.compile(r"the relation between (.*) and (.*) exists"),
    render="the relation between {head} and {tail} exists",
    clause_sep=r";|\.\s+(?=the\s+relation\s+between\s)",  # BioGPT: ";"; also ". the relation"
    title_in_source=True,
    fixed_relation="CID",
    label_set=frozenset({"CID"}),
)
