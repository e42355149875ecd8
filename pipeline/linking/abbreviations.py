"""Abbreviations defined in a text, by the Schwartz & Hearst (2003) algorithm (our implementation).

Candidates are `long form (SHORT)` and, when the parenthesised text has more than two words,
`SHORT (long form)`. A short form has at most two words, 2-10 characters, a letter and an
alphanumeric first character; its long form lies in the same sentence, directly before the
parenthesis, within min(|A| + 5, 2|A|) words, and is matched right to left character by
character, the short form's first character at the start of a word. A plural short form
("VSDs") may leave its s out of the long form and also defines its singular.
"""
from __future__ import annotations

import re

_PAREN = re.compile(r"\(([^()]*)\)")
_SENTENCE_END = re.compile(r"[.!?;]\s+(?=[A-Z0-9])")


def _is_short_form(text: str) -> bool:
    """Schwartz-Hearst's short-form test."""
    if not 2 <= len(text) <= 10 or len(text.split()) > 2:
        return False
    if not text[0].isalnum() or not any(c.isalpha() for c in text):
        return False
    return True


def _plural(short: str) -> bool:
    """A short form in the plural: capitals then a lower-case s ("VSDs", "NSAIDs")."""
    return len(short) >= 3 and short.endswith("s") and sum(c.isupper() for c in short[:-1]) >= 2


def singular_short(short: str) -> str | None:
    """The singular of a plural short form ("VSDs" -> "VSD"), else None."""
    return short[:-1] if _plural(short) else None


def best_long_form(short: str, long: str) -> str | None:
    """The shortest suffix of `long` that the short form's characters match, or None."""
    s, l = len(short) - 1, len(long) - 1
    while s >= 0:
        c = short[s].lower()
        if not c.isalnum():
            s -= 1
            continue
        while l >= 0 and (long[l].lower() != c or (s == 0 and l > 0 and long[l - 1].isalnum())):
            l -= 1
        if l < 0:
            return None
        l -= 1
        s -= 1
    start = long.rfind(" ", 0, l + 1) + 1
    return long[start:]


def _candidate(short: str, window: str) -> tuple[str, str] | None:
    """(short, long) when the words before the parenthesis define `short`."""
    short = short.strip()
    if not _is_short_form(short):
        return None
    limit = min(len(short) + 5, len(short) * 2)
    words = window.split()[-limit:]
    long = best_long_form(short, " ".join(words))
    if long is None and _plural(short):  # "VSDs": the plural s need not be in the long form
        long = best_long_form(short[:-1], " ".join(words))
    if long is None:
        return None
    long = long.strip(" ,;:")
    if len(long) < len(short) or short.lower() in (w.lower() for w in long.split()):
        return None
    if len(long.split()) > limit:
        return None
    return short, long


def find_abbreviations(text: str) -> dict[str, str]:
    """Short form -> long form for every abbreviation the text defines (first definition wins)."""
    out: dict[str, str] = {}
    for sentence in _SENTENCE_END.split(text or ""):
        for m in _PAREN.finditer(sentence):
            inner = m.group(1).split(";")[0].split(", ")[0].strip()
            before = sentence[: m.start()].rstrip()
            found = _candidate(inner, before)
            if found is None and len(inner.split()) > 2:  # SHORT (long form)
                head = before.split()[-1:] if before else []
                if head:
                    short = head[0].strip(",;:")
                    found = _candidate(short, inner)
            if found is not None:
                out.setdefault(*found)
                single = singular_short(found[0])  # "VSD" later names what "VSDs" defined
                if single:
                    out.setdefault(single, found[1])
    return out
