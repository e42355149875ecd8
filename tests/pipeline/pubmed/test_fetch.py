"""`biomine fetch` against a loopback E-utilities server serving real PubMed sample records."""
from __future__ import annotations

import gzip
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree

from jobs.cli import main
from pipeline.pubmed.entrez import EntrezClient, EntrezConfig, EntrezError, RateLimiter, retry_after_s
from pipeline.pubmed.fetch import FetchSpec, batch_name, fetch, read_pmids
from pipeline.pubmed.xml import iter_records
from pipeline.pubmed.read import expand_inputs

ESEARCH = ('<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD '
           'esearch 20060628//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">'
           "\n<eSearchResult><Count>{n}</Count><RetMax>0</RetMax><RetStart>0</RetStart><QueryKey>1"
           "</QueryKey><WebEnv>{webenv}</WebEnv><IdList></IdList><TranslationSet/>"
           "<QueryTranslation>{q}</QueryTranslation></eSearchResult>")
EFETCH_HEAD = (b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle,'
               b' 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
               b"<PubmedArticleSet>\n")


class FakeEutils:
    """In-memory E-utilities: esearch (history) and efetch (history slices or id lists)."""

    def __init__(self, articles: list[tuple[int, bytes]]) -> None:
        self.articles = articles
        self.by_pmid = dict(articles)
        self.failures: list[tuple[int, dict[str, str], bytes]] = []  # served before real replies
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.webenv = "MCID_test_1"

    def reply(self, utility: str, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((utility, form))
        if self.failures:
            return self.failures.pop(0)
        if utility == "esearch":
            n = 0 if form["term"] == "no hits" else len(self.articles)
            body = ESEARCH.format(n=n, webenv=self.webenv, q=form["term"])
            return 200, {}, body.encode()
        if "id" in form:
            chosen = [self.by_pmid[int(i)] for i in form["id"].split(",") if int(i) in self.by_pmid]
        else:
            assert form["WebEnv"] == self.webenv and form["query_key"] == "1"
            start, size = int(form["retstart"]), int(form["retmax"])
            chosen = [xml for _, xml in self.articles[start:start + size]]
        return 200, {}, EFETCH_HEAD + b"\n".join(chosen) + b"\n</PubmedArticleSet>\n"


def load_articles(path: Path) -> list[tuple[int, bytes]]:
    """(PMID, serialized <PubmedArticle>) of a real PubMed file."""
    root = etree.fromstring(gzip.decompress(path.read_bytes()))
    return [(int(a.findtext("MedlineCitation/PMID")), etree.tostring(a))
            for a in root.iter("PubmedArticle")]


@pytest.fixture()
def server(data_dir) -> Iterator[tuple[FakeEutils, str]]:
    fake = FakeEutils(load_articles(data_dir / "pubmed" / "pmparser_sample_pubmed26n1334.xml.gz"))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            utility = self.path.rsplit("/", 1)[-1].removesuffix(".fcgi")
            raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
            form = dict(urllib.parse.parse_qsl(raw))
            status, headers, body = fake.reply(utility, form)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}/entrez/eutils/"
    httpd.shutdown()
    httpd.server_close()


def client(url: str, **kw) -> EntrezClient:
    base = dict(base_url=url, email="test@example.org", backoff_s=0.01, requests_per_s=1000.0)
    return EntrezClient(EntrezConfig(**{**base, **kw}))


def pmids_in(paths: list[str]) -> list[int]:
    return [r["pmid"] for p in paths for r in iter_records(p, strict=True)]


def test_query_in_batches_with_429_and_500_retries(server, tmp_path):
    fake, url = server
    fake.failures = [(429, {"Retry-After": "0"}, b"Too Many Requests")]  # the esearch
    out = tmp_path / "fetched"
    spec = FetchSpec(output=str(out), query="asthma AND 2025[dp]", batch_size=7)
    fake_500 = (500, {}, b"Internal Server Error")
    calls: list[str] = []

    def on_batch(name: str, n: int) -> None:
        calls.append(name)
        if len(calls) == 1:
            fake.failures.append(fake_500)  # the second efetch fails once

    result = fetch(spec, client(url), on_batch=on_batch)
    assert result.count == 30 and result.fetched == 5 and result.skipped == 0
    assert result.articles == 30
    assert [Path(f).name for f in result.files] == [f"fetch_000{i}.xml" for i in range(1, 6)]
    # the 429'd esearch and the 500'd efetch were asked again; efetch used the history keys
    kinds = [u for u, _ in fake.requests]
    assert kinds == ["esearch", "esearch", "efetch", "efetch", "efetch", "efetch", "efetch", "efetch"]
    starts = [f["retstart"] for u, f in fake.requests if u == "efetch"]
    assert starts == ["0", "7", "7", "14", "21", "28"]
    form = fake.requests[0][1]
    assert form["usehistory"] == "y" and form["tool"] == "biomine" and form["email"] == "test@example.org"
    # the files are what `biomine run` reads: NLM-orderable names, clean PubmedArticleSets
    ordered = expand_inputs([str(out)])
    assert ordered == [str(out / batch_name(i, 5)) for i in range(1, 6)]
    assert pmids_in(ordered) == [p for p, _ in fake.articles]
    assert not list(out.glob(".*tmp"))
    state = json.loads((out / "_fetch.json").read_text())
    assert state["count"] == 30 and state["batches"]["fetch_0005.xml"] == {
        "start": 28, "size": 2, "articles": 2}


def test_resume_skips_finished_batches(server, tmp_path):
    fake, url = server
    out = tmp_path / "fetched"
    spec = FetchSpec(output=str(out), query="asthma", batch_size=10)
    down = (503, {"Retry-After": "0"}, b"Service Unavailable")

    def break_after_first(name: str, n: int) -> None:
        fake.failures.extend([down, down])  # the next batch fails both of its tries

    with pytest.raises(EntrezError, match="HTTP 503.*gave up after 2 tries"):
        fetch(spec, client(url, max_tries=2), on_batch=break_after_first)
    assert sorted(p.name for p in out.glob("*.xml")) == ["fetch_0001.xml"]
    fake.requests.clear()
    result = fetch(spec, client(url))
    assert (result.fetched, result.skipped, result.articles) == (2, 1, 30)
    assert [f["retstart"] for u, f in fake.requests if u == "efetch"] == ["10", "20"]
    assert pmids_in(result.files) == [p for p, _ in fake.articles]
    fake.requests.clear()
    again = fetch(spec, client(url))  # finished: only the esearch is repeated
    assert (again.fetched, again.skipped) == (0, 3)
    assert [u for u, _ in fake.requests] == ["esearch"]


def test_other_source_or_changed_hits_refused(server, tmp_path):
    fake, url = server
    out = str(tmp_path / "fetched")
    fetch(FetchSpec(output=out, query="asthma", batch_size=15), client(url))
    with pytest.raises(ValueError, match="holds a fetch of.*use a new output folder"):
        fetch(FetchSpec(output=out, query="cancer", batch_size=15), client(url))
    with pytest.raises(ValueError, match="holds a fetch of"):
        fetch(FetchSpec(output=out, query="asthma", batch_size=10), client(url))
    fake.articles = fake.articles[:-1]  # the query now matches one record less
    with pytest.raises(ValueError, match="now matches 29 records.*matched 30"):
        fetch(FetchSpec(output=out, query="asthma", batch_size=15), client(url))
    empty = fetch(FetchSpec(output=str(tmp_path / "none"), query="no hits"), client(url))
    assert (empty.count, empty.files) == (0, [])


def test_unreadable_reply_fetched_again_and_non_retryable_status(server, tmp_path):
    fake, url = server
    fake.failures = [(200, {}, b"<eFetchResult><ERROR>Unable to obtain query #1</ERROR></eFetchResult>")]
    first3 = tuple(p for p, _ in fake.articles[:3])
    result = fetch(FetchSpec(output=str(tmp_path / "a"), pmids=first3), client(url))
    assert result.articles == 3 and [u for u, _ in fake.requests] == ["efetch", "efetch"]
    fake.failures = [(400, {}, b"bad request")]
    with pytest.raises(EntrezError, match="HTTP 400.*not retried"):
        fetch(FetchSpec(output=str(tmp_path / "b"), query="asthma"), client(url))


def test_cli_pmids_file(server, tmp_path, capsys):
    fake, url = server
    wanted = [p for p, _ in fake.articles][::3]
    ids = tmp_path / "ids.txt"
    ids.write_text("# my list\n" + "\n".join(map(str, wanted)) + f"\n\n{wanted[0]}\n99999999\n")
    out = tmp_path / "fetched"
    argv = ["fetch", "--pmids", str(ids), "-o", str(out), "--batch-size", "4", "--base-url", url,
            "--email", "me@example.org"]
    assert main(argv) == 0
    assert "11 records -> 3 files" in capsys.readouterr().out
    assert pmids_in(expand_inputs([str(out)])) == wanted  # the unknown PMID is just absent
    posted = [f["id"].split(",") for u, f in fake.requests if u == "efetch"]
    assert [len(b) for b in posted] == [4, 4, 3] and "99999999" in posted[-1]
    assert main(argv) == 0 and "0 fetched now, 3 already there" in capsys.readouterr().out
    bad = tmp_path / "bad.txt"
    bad.write_text("123\nPMID42\n")
    assert main(["fetch", "--pmids", str(bad), "-o", str(out)]) == 2
    assert "bad.txt:2: not a PMID" in capsys.readouterr().err
    assert main(["fetch", "--query", "x", "-o", str(out), "--batch-size", "20000"]) == 2


def test_rate_limits_and_retry_after():
    assert EntrezConfig().rate == 3.0 and EntrezConfig(api_key="k").rate == 10.0
    now, slept = [100.0], []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))
        now[0] += s

    limiter = RateLimiter(3.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limiter.wait()
    assert slept == [round(1 / 3, 6)] * 3
    now[0] += 10  # idle for a while: no wait, and no burst credit beyond one request
    limiter.wait()
    limiter.wait()
    assert len(slept) == 4
    assert retry_after_s("7") == 7.0 and retry_after_s(None) is None and retry_after_s("soon") is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    with pytest.raises(ValueError, match="http"):
        EntrezConfig(base_url="ftp://x")


def test_read_pmids_errors(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("# none\n\n")
    with pytest.raises(ValueError, match="no PMIDs"):
        read_pmids(str(f))
    f.write_text("5\n0\n")
    with pytest.raises(ValueError, match="p.txt:2"):
        read_pmids(str(f))
    with pytest.raises(ValueError, match="exactly one"):
        FetchSpec(output=str(tmp_path), query="a", pmids=(1,))
