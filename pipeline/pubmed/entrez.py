"""NCBI E-utilities client: esearch (with history) and efetch, rate-limited, retried.

Why our own two HTTP calls rather than `Bio.Entrez.esearch`/`efetch`: Bio.Entrez hard-codes
each URL inside each function (no base-URL knob, so tests could only monkeypatch module
internals), keeps its settings in module globals (`Entrez.email`, `max_tries`), and retries
with a fixed sleep without reading `Retry-After`. Here every setting lives in a frozen
`EntrezConfig`; Bio.Entrez still parses the esearch reply (`Entrez.read`, DTD-validated).
"""
from __future__ import annotations

import email.utils
import io
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
MAX_BATCH = 10_000  # NCBI: at most 10,000 records per efetch
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class EntrezError(RuntimeError):
    """An E-utilities request failed for good (after retries, or with a non-retryable status)."""


@dataclass(frozen=True)
class EntrezConfig:
    """Where and how to call E-utilities (validated on creation)."""

    base_url: str = DEFAULT_BASE_URL
    email: str | None = None
    api_key: str | None = None
    tool: str = "biomine"
    max_tries: int = 6
    backoff_s: float = 1.0  # first retry delay; doubles per try
    max_backoff_s: float = 60.0
    timeout_s: float = 300.0
    requests_per_s: float | None = None  # None: NCBI's limit, 10 with an API key, else 3

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if not self.base_url.endswith("/"):
            object.__setattr__(self, "base_url", self.base_url + "/")
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {self.max_tries}")
        if self.backoff_s < 0 or self.max_backoff_s < 0 or self.timeout_s <= 0:
            raise ValueError("backoff_s and max_backoff_s must be >= 0 and timeout_s > 0")
        if self.requests_per_s is not None and self.requests_per_s <= 0:
            raise ValueError(f"requests_per_s must be > 0, got {self.requests_per_s}")

    @property
    def rate(self) -> float:
        """Requests per second allowed: the set value, else NCBI's (10 with a key, else 3)."""
        if self.requests_per_s is not None:
            return self.requests_per_s
        return 10.0 if self.api_key else 3.0


class RateLimiter:
    """Spaces request starts at least 1/rate seconds apart (thread-safe)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.interval = 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may start, and book that slot."""
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._sleep(self._next - now)
                now = self._next
            self._next = now + self.interval


@dataclass(frozen=True)
class SearchResult:
    """What esearch with usehistory=y returns: the hit count and the server-side result set."""

    count: int
    webenv: str
    query_key: str


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class EntrezClient:
    """esearch/efetch against `config.base_url` with NCBI's rate limit and retries on 429/5xx."""

    def __init__(self, config: EntrezConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self.limiter = RateLimiter(config.rate, sleep=sleep)

    def request(self, utility: str, params: dict[str, str]) -> bytes:
        """POST one E-utility call (`esearch`, `efetch`); returns the body, retrying as needed."""
        cfg = self.config
        form = {**params, "tool": cfg.tool}
        if cfg.email:
            form["email"] = cfg.email
        if cfg.api_key:
            form["api_key"] = cfg.api_key
        url = f"{cfg.base_url}{utility}.fcgi"
        data = urllib.parse.urlencode(form).encode()
        for attempt in range(1, cfg.max_tries + 1):
            self.limiter.wait()
            req = urllib.request.Request(url, data=data, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:
                    return resp.read()
            except urllib.error.HTTPError as exc:
                body = exc.read()[:300].decode("utf-8", "replace")
                what = f"{utility}: HTTP {exc.code} {exc.reason}: {body.strip()}"
                if exc.code not in RETRY_STATUS:
                    raise EntrezError(f"{what} (not retried)") from exc
                delay = retry_after_s(exc.headers.get("Retry-After"))
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                what, delay = f"{utility}: {type(exc).__name__}: {exc}", None
            if attempt == cfg.max_tries:
                raise EntrezError(f"{what} (gave up after {cfg.max_tries} tries)")
            if delay is None:
                delay = min(cfg.max_backoff_s, cfg.backoff_s * 2 ** (attempt - 1))
            log.warning("%s; retry %d/%d in %.1fs", what, attempt, cfg.max_tries - 1, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def esearch(self, term: str, db: str = "pubmed") -> SearchResult:
        """Run a search and keep its result set on the server (usehistory=y)."""
        from Bio import Entrez

        body = self.request("esearch", {"db": db, "term": term, "usehistory": "y",
                                        "retmax": "0", "retmode": "xml"})
        try:
            parsed = Entrez.read(io.BytesIO(body))
        except Exception as exc:  # Bio.Entrez raises several parser error types
            raise EntrezError(f"esearch: unreadable reply ({type(exc).__name__}: {exc}): "
                              f"{body[:200]!r}") from exc
        if parsed.get("ERROR"):
            raise EntrezError(f"esearch: NCBI error for {term!r}: {parsed['ERROR']}")
        try:
            return SearchResult(int(parsed["Count"]), str(parsed["WebEnv"]), str(parsed["QueryKey"]))
        except KeyError as exc:
            raise EntrezError(f"esearch: reply for {term!r} lacks {exc}: {body[:200]!r}") from exc

    def efetch_history(self, search: SearchResult, retstart: int, retmax: int,
                       db: str = "pubmed") -> bytes:
        """Records retstart .. retstart+retmax-1 of a history result set, as PubMed XML."""
        _check_batch(retmax)
        return self.request("efetch", {"db": db, "WebEnv": search.webenv,
                                       "query_key": search.query_key, "retstart": str(retstart),
                                       "retmax": str(retmax), "retmode": "xml"})

    def efetch_ids(self, ids: Sequence[int], db: str = "pubmed") -> bytes:
        """The records of these PMIDs (POSTed, so 10,000 ids fit), as PubMed XML."""
        _check_batch(len(ids))
        return self.request("efetch", {"db": db, "id": ",".join(str(i) for i in ids),
                                       "retmode": "xml"})


def _check_batch(n: int) -> None:
    if not 1 <= n <= MAX_BATCH:
        raise ValueError(f"an efetch batch holds 1..{MAX_BATCH} records, got {n}")
