"""Key index: the PMIDs a base holds, with versions other than 1, found without reading the base."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.state.keys import base_rows, keys_table


def test_key_index_finds_present_pmids_and_their_versions():
    pmids = np.array([1003, 1000, 1500, 1999])
    index = keys_table(pmids, np.array([1, 2, 1, 3], np.int32), start=1000, width=1000, gen=7)
    found = base_rows(index, np.array([5, 1000, 1001, 1003, 1500, 1999, 2000]))
    assert found.to_pydict() == {"pmid": [1000, 1003, 1500, 1999], "version": [2, 1, 1, 3], "gen": [7] * 4}
    assert index.column("bits")[0].as_py().__len__() == 125  # one bit per PMID of the range


def test_key_index_refuses_pmids_outside_its_bucket():
    with pytest.raises(ValueError, match="outside bucket range"):
        keys_table(np.array([10, 20]), np.ones(2, np.int32), start=0, width=15, gen=0)
