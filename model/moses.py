"""Moses tokenizer for BioGPT: sacremoses' English rules, chunk-cached, with character offsets.

`MosesTokenizer().tokenize(text)` equals sacremoses'
`MosesTokenizer(lang="en").tokenize(text, aggressive_dash_splits=True, escape=True)`.
Speed comes from applying the same substitution chain once per distinct whitespace-separated
chunk (cached) instead of once per text; the only rules that look across chunks (non-breaking
prefixes, the final `.'`) run over the token list, and chunks whose apostrophe rules could
interact across a space are processed together. The Unicode tables and English prefixes are
read from sacremoses (imported lazily) so the character classes are exactly the oracle's.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

JUNK = "".join(chr(c) for c in range(32) if not chr(c).isspace())  # removed by Moses, not spaces
_JUNK_RE = re.compile(f"[{re.escape(JUNK)}]")
_SPACE_APOS = re.compile(r"\s'")
_MARKER = re.compile(r"(?:DOT)+MULTI")
_MULTIDOT = re.compile(r"\.{2,}")
_SEP = "\x00"  # chunk separator inside one substitution pass; a junk char, so never in a chunk
_ESCAPES = (("&", "&amp;"), ("|", "&#124;"), ("<", "&lt;"), (">", "&gt;"), ("'", "&apos;"),
            ('"', "&quot;"), ("[", "&#91;"), ("]", "&#93;"))
ESCAPE = {c: e for c, e in _ESCAPES}
_ESCAPE_CHARS = frozenset(ESCAPE)


def escape(token: str) -> str:
    """Moses' XML escaping of one token (`&` -> `&amp;`, `'` -> `&apos;`, `[` -> `&#91;` ...)."""
    if _ESCAPE_CHARS.isdisjoint(token):
        return token
    return "".join(ESCAPE.get(c, c) for c in token)


def restore_multidots(token: str) -> str:
    """Turn `DOTDOTMULTI` markers back into dots, as sacremoses does after splitting."""
    return _MARKER.sub(lambda m: "." * ((m.end() - m.start() - 5) // 3), token)


def _sacremoses_tables() -> dict:
    """The Unicode classes and English non-breaking prefixes sacremoses uses (lazy import)."""
    try:
        from sacremoses.tokenize import MosesTokenizer as SacreMoses
    except ImportError as exc:  # model/ imports without it; tokenizing needs its tables
        raise ImportError("biomine's Moses tokenizer reads its Unicode tables from sacremoses; "
                          "install it with `pip install sacremoses`") from exc
    sm = SacreMoses(lang="en")
    return {"alnum": sm.IsAlnum, "alpha": sm.IsAlpha, "n": sm.IsN, "lower": sm.IsLower,
            "prefixes": frozenset(sm.NONBREAKING_PREFIXES),
            "numeric_only": frozenset(sm.NUMERIC_ONLY_PREFIXES)}


class MosesTokenizer:
    """English Moses tokenization with aggressive dash splits and escaping, plus offsets."""

    def __init__(self, max_cache: int = 200_000) -> None:
        t = _sacremoses_tables()
        alnum, alpha, isn = t["alnum"], t["alpha"], t["n"]
        self._alpha = frozenset(alpha)
        self._lower = frozenset(t["lower"])
        self._prefixes = t["prefixes"]
        self._numeric_only = t["numeric_only"]
        # The substitutions of sacremoses' tokenize(), in its order, up to the prefix step.
        self._pad = re.compile(r"([^{}\s\.'\`\,\-])".format(alnum))
        # sacremoses' `([alnum])\-(?=[alnum])` -> `\1 @-@ `; a match never ends in an alnum, so the
        # lookbehind form matches the same hyphens and needs no per-match template expansion.
        self._hyphen = re.compile(r"(?<=[{alphanum}])\-(?=[{alphanum}])".format(alphanum=alnum))
        self._rules = (  # (a character every match needs, pattern, replacement)
            (",", re.compile(r"([^{}])[,]".format(isn)), r"\1 , "),
            (",", re.compile(r"[,]([^{}])".format(isn)), r" , \1"),
            (",", re.compile(r"([{}])[,]$".format(isn)), r"\1 , "),
            ("'", re.compile(r"([^{alpha}])[']([^{alpha}])".format(alpha=alpha)), r"\1 ' \2"),
            ("'", re.compile(r"([^{alpha}{isn}])[']([{alpha}])".format(alpha=alpha, isn=isn)), r"\1 ' \2"),
            ("'", re.compile(r"([{alpha}])[']([^{alpha}])".format(alpha=alpha)), r"\1 ' \2"),
            ("'", re.compile(r"([{alpha}])[']([{alpha}])".format(alpha=alpha)), r"\1 '\2"),
            ("'", re.compile(r"([{isn}])[']([s])".format(isn=isn)), r"\1 '\2"),
        )
        self._cache: dict[str, tuple[str, ...]] = {}
        self._max_cache = max_cache

    # ---------------------------------------------------------------- substitution chain
    def _substitute(self, text: str) -> list[str]:
        """Run the per-chunk part of sacremoses' chain on `text`; return its tokens."""
        text = " ".join(self._pad.split(text))  # == pad.sub(r" \1 "): a space around each match
        if "-" in text:
            text = self._hyphen.sub(" @-@ ", text)
        if ".." in text:
            n = len(text)
            text = _MULTIDOT.sub(lambda m: " " + "DOT" * (m.end() - m.start()) + "MULTI"
                                 + (" " if m.end() < n else ""), text)
        for needed, regexp, repl in self._rules:
            if needed in text:
                text = regexp.sub(repl, text)
        return text.split()

    def _chunks(self, text: str) -> list[str]:
        """Whitespace-separated chunks after junk removal; `'`-initial words join their left one."""
        words = text.split()
        junk = not text.isprintable() and _JUNK_RE.search(text) is not None
        if junk:
            words = [w for w in (_JUNK_RE.sub("", w) for w in words) if w]
        if words and (junk or ("'" in text and _SPACE_APOS.search(text))):
            merged: list[str] = []
            for w in words:
                if w[0] == "'" and merged:
                    merged[-1] += " " + w
                else:
                    merged.append(w)
            return merged
        return words

    def _chunk_tokens(self, chunks: list[str]) -> list[str]:
        """Tokens of all chunks, from the cache or from one batched substitution pass."""
        keys = chunks.copy()
        keys[0] = _SEP + keys[0]
        keys[-1] = keys[-1] + _SEP  # first/last chunks see the text's edges, so key them apart
        cache = self._cache
        got = [cache.get(k) for k in keys]
        if None in got:
            miss = [i for i, g in enumerate(got) if g is None]
            head = "" if miss[0] == 0 else _SEP + " "
            tail = "" if miss[-1] == len(chunks) - 1 else " " + _SEP
            toks = self._substitute(head + f" {_SEP} ".join(chunks[i] for i in miss) + tail)
            parts: list[list[str]] = [[]]
            for tok in toks:
                if tok == _SEP:
                    parts.append([])
                else:
                    parts[-1].append(tok)
            parts = parts[1 if head else 0:len(parts) - (1 if tail else 0)]
            if len(parts) != len(miss):
                raise RuntimeError(f"Moses chunking lost its separators in {chunks!r}")
            if len(cache) + len(miss) > self._max_cache:
                cache.clear()
            for i, part in zip(miss, parts):
                got[i] = cache[keys[i]] = tuple(part)
        out: list[str] = []
        for g in got:
            out.extend(g)
        return out

    def _keeps_period(self, toks: list[str], i: int) -> bool:
        """Whether token i (`x.`) keeps its period: sacremoses' non-breaking prefix test."""
        prefix = toks[i][:-1]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        return (("." in prefix and not self._alpha.isdisjoint(prefix))
                or (prefix in self._prefixes and prefix not in self._numeric_only)
                or (nxt != "" and nxt[0] in self._lower)
                or (prefix in self._numeric_only and nxt[:1].isascii() and nxt[:1].isdigit()))

    def _nonbreaking(self, toks: list[str]) -> list[str]:
        """sacremoses' handles_nonbreaking_prefixes followed by the final `.'` split."""
        split = [i for i, t in enumerate(toks)
                 if t[-1] == "." and len(t) > 1 and not self._keeps_period(toks, i)]
        if split:
            out, prev = [], 0
            for i in split:
                out.extend(toks[prev:i])
                out.append(toks[i][:-1])
                out.append(".")
                prev = i + 1
            out.extend(toks[prev:])
            toks = out
        if toks[-1][-2:] == ".'":  # TRAILING_DOT_APOSTROPHE: `\.' ?$` -> " . ' "
            head = toks.pop()[:-2]
            toks.extend([head, ".", "'"] if head else [".", "'"])
        return toks

    # ---------------------------------------------------------------- public API
    def raw_tokens(self, text: str) -> list[str]:
        """Moses tokens before multidot restoring and escaping (see `finalize`)."""
        chunks = self._chunks(text)
        if not chunks:
            return []
        return self._nonbreaking(self._chunk_tokens(chunks))

    @staticmethod
    def finalize(raw: str) -> str:
        """A raw token as sacremoses returns it: multidots restored, XML-escaped."""
        if "MULTI" in raw:
            raw = restore_multidots(raw)
        return escape(raw)

    def tokenize(self, text: str) -> list[str]:
        """Exactly sacremoses' tokens for `text` (aggressive dash splits, escaped)."""
        return [self.finalize(t) for t in self.raw_tokens(text)]

    def align(self, text: str, raws: Sequence[str]) -> list[tuple[int, int, list[int] | None]]:
        """Per raw token: (start, end) in `text`, plus per-character positions when not contiguous.

        A token's original form is the token itself, except `@-@` (a split `-`) and multidot
        markers (dots). Only whitespace and control characters lie between or inside tokens.
        """
        out: list[tuple[int, int, list[int] | None]] = []
        pos = 0
        for raw in raws:
            orig = "-" if raw == "@-@" else (restore_multidots(raw) if "MULTI" in raw else raw)
            j = text.find(orig, pos)
            if j >= 0 and (j == pos or text[pos:j].isspace()):
                pos = j + len(orig)
                out.append((j, pos, None))
                continue
            chars = self._walk(text, pos, orig)
            if chars is None and orig != raw:  # a literal "DOTMULTI" in the text itself
                chars = self._walk(text, pos, raw)
            if chars is None:
                raise ValueError(f"cannot align Moses token {raw!r} at char {pos} of {text[:80]!r}")
            pos = chars[-1] + 1
            out.append((chars[0], pos, chars))
        return out

    @staticmethod
    def _walk(text: str, pos: int, orig: str) -> list[int] | None:
        """Match `orig` from `pos`, skipping whitespace before and control characters inside."""
        chars: list[int] = []
        n = len(text)
        for c in orig:
            while pos < n and text[pos] != c and (text[pos] in JUNK or (not chars and text[pos].isspace())):
                pos += 1
            if pos >= n or text[pos] != c:
                return None
            chars.append(pos)
            pos += 1
        return chars


_UNESCAPES = (("&bar;", "|"), ("&#124;", "|"), ("&lt;", "<"), ("&gt;", ">"), ("&bra;", "["),
              ("&ket;", "]"), ("&quot;", '"'), ("&apos;", "'"), ("&#91;", "["), ("&#93;", "]"),
              ("&amp;", "&"))
_DETOK_HYPHEN = re.compile(r" \@\-\@ ")
_IS_PUNCT = re.compile(r"^[\,\.\?\!\:\;\\\%\}\]\)]+$")
_IS_OPEN_QUOTE = re.compile(r"""^[\'\"„“`]+$""")
_IS_CURLY_QUOTES = re.compile(r"^[„“”]+$")
_MULTI_SPACE = re.compile(r" {2,}")


class MosesDetokenizer:
    """sacremoses' English MosesDetokenizer().detokenize(tokens) (unescaping included)."""

    def __init__(self) -> None:
        try:
            from sacremoses.tokenize import MosesDetokenizer as SacreDetok
            from sacremoses.util import is_cjk
        except ImportError as exc:
            raise ImportError("decoding reads sacremoses' Unicode tables; `pip install sacremoses`") from exc
        self._is_cjk = is_cjk
        self._currency = re.compile(r"^[{}\(\[\{{\¿\¡]+$".format(SacreDetok.IsSc))
        self._contraction = re.compile(r"^['][{}]".format(SacreDetok.IsAlpha))

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Join Moses tokens back into text."""
        text = _DETOK_HYPHEN.sub("-", " {} ".format(" ".join(tokens)))
        for pattern, char in _UNESCAPES:
            if pattern in text:
                text = text.replace(pattern, char)
        quotes = {"'": 0, '"': 0, "``": 0, "`": 0, "''": 0}
        prepend, out = " ", []
        toks = text.split()
        is_cjk = self._is_cjk
        for i, tok in enumerate(toks):
            if is_cjk(tok[0]):
                out.append(tok if i > 0 and is_cjk(toks[i - 1][-1]) else prepend + tok)
                prepend = " "
            elif self._currency.search(tok):
                out.append(prepend + tok)
                prepend = ""
            elif _IS_PUNCT.search(tok) or (i > 0 and self._contraction.search(tok)):
                out.append(tok)
                prepend = " "
            elif _IS_OPEN_QUOTE.search(tok):
                norm = '"' if _IS_CURLY_QUOTES.search(tok) else tok
                count = quotes.setdefault(norm, 0)
                if count % 2 == 0 and tok == "'" and i > 0 and toks[i - 1].endswith("s"):
                    out.append(tok)  # possessive of a word ending in s: "the Jones' house"
                    prepend = " "
                elif count % 2 == 0:
                    out.append(prepend + tok)
                    prepend = ""
                    quotes[norm] += 1
                else:
                    out.append(tok)
                    prepend = " "
                    quotes[norm] += 1
            else:
                out.append(prepend + tok)
                prepend = " "
        return _MULTI_SPACE.sub(" ", "".join(out)).strip()
