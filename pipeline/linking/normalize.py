"""Name variants for matching: case, punctuation, hyphen/space, Greek letters, plurals, British
spellings, permuted "X, Y" terms. Each level is looser than the one before; the lexicon stores
every level's key of every name, the linker tries the levels in order."""
from __future__ import annotations

import re
import unicodedata

# level numbers (lower is stricter); the linker's score falls with the level
EXACT, LOWER, NORMAL, COMPACT, BAG = 0, 1, 2, 3, 4
LEVELS = (EXACT, LOWER, NORMAL, COMPACT, BAG)
LEVEL_NAMES = {EXACT: "exact", LOWER: "lowercase", NORMAL: "normalised", COMPACT: "compact",
               BAG: "word-bag"}

GREEK = {"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
         "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu",
         "ξ": "xi", "ο": "omicron", "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "sigma", "τ": "tau",
         "υ": "upsilon", "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega"}
# British -> American, applied inside words to every name and mention alike (one regex pass)
_BRITISH_MAP = {"aemia": "emia", "haem": "hem", "aetio": "etio", "oedem": "edem", "oesophag": "esophag",
                "oestr": "estr", "foet": "fet", "rrhoea": "rrhea", "leukaem": "leukem", "anaes": "anes",
                "paed": "ped", "tumour": "tumor", "our": "or", "isation": "ization", "ise": "ize", "yse": "yze",
                "sulph": "sulf", "caesar": "cesar"}
_BRITISH = re.compile(r"aemia|haem|aetio|oedem|oesophag|oestr|foet|rrhoea|leukaem|anaes|paed|"
                      r"tumour|our\b|isation|ise\b|yse\b|sulph|caesar")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_STOP = frozenset({"of", "the", "in", "with", "to", "for", "by", "on", "a", "an", "due", "nos"})
_KEEP_S = ("ss", "us", "is")


def fold(text: str) -> str:
    """Unicode compatibility form, lower case, Greek letters spelled out, accents dropped."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(GREEK.get(ch, ch) for ch in text)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def singular(word: str) -> str:
    """A plural English word's singular (conservative: short words and -ss/-us/-is kept)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(_KEEP_S):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """The normalised words of a name: folded, British spellings Americanised, singular."""
    text = _BRITISH.sub(lambda m: _BRITISH_MAP[m.group(0)], fold(text))
    return [singular(w) for w in _NON_WORD.split(text) if w]


def keys(name: str) -> dict[int, str]:
    """Every level's key of a name (levels whose key is empty are left out)."""
    name = name.strip()
    ws = words(name)
    out = {EXACT: name, LOWER: fold(name), NORMAL: " ".join(ws), COMPACT: "".join(ws),
           BAG: " ".join(sorted(set(ws) - _STOP))}
    return {level: key for level, key in out.items() if key}


def permuted(name: str) -> str | None:
    """MeSH's permuted "Carcinoma, Hepatocellular" as "Hepatocellular Carcinoma" (None if not one)."""
    parts = [p.strip() for p in name.split(", ")]
    if len(parts) != 2 or not all(parts) or any(c in name for c in "()[]"):
        return None
    return f"{parts[1]} {parts[0]}"
