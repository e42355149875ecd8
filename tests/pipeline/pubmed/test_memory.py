"""The streaming reader's memory stays flat: parsing 8x more records costs no more memory."""
from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

from benchmarks.parse import build_file

PROBE = ("import resource, sys\n"
         "from pipeline.pubmed.xml import iter_records\n"
         "n = sum(1 for r in iter_records(sys.argv[1]) if r['record_type'] == 'article')\n"
         "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")


def peak_rss_kib(path: Path) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(path)], check=True, capture_output=True,
                         text=True, cwd=Path(__file__).parents[3]).stdout.split()
    return int(out[0]), int(out[1])


def test_peak_memory_does_not_grow_with_file_size(tmp_path):
    small, big = tmp_path / "small.xml.gz", tmp_path / "big.xml.gz"
    n_small, n_big = build_file(small, 600), build_file(big, 4800)
    big_xml_kib = len(gzip.decompress(big.read_bytes())) // 1024
    (count_small, rss_small), (count_big, rss_big) = peak_rss_kib(small), peak_rss_kib(big)
    assert (count_small, count_big) == (n_small, n_big)
    # ~45 MiB more XML: a reader that kept its tree would grow by several times that
    assert rss_big - rss_small < big_xml_kib // 4, (rss_small, rss_big, big_xml_kib)
