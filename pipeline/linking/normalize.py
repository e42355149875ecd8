"""Name variants for matching: case, punctuation, hyphen/space, Greek letters, plurals, British
spellings, permuted "X, Y" terms. Each level is looser than the one before; the lexicon stores
every level's key of every name, the linker tries the levels in order."""
from __future__ import annotations

import re
import unicodedata

# level numbers (lower is stricter); the linker's score falls with the level
EXACT, LOWER, NORMAL, COMPACT, BAG, STEM = 0, 1, 2, 3, 4, 5
LEVELS = (EXACT, LOWER, NORMAL, COMPACT, BAG, STEM)
LEVEL_NAMES = {EXACT: "exact", LOWER: "lowercase", NORMAL: "normalised", COMPACT: "compact",
               BAG: "word-bag", STEM: "stem-bag"}

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
_POSSESSIVE = re.compile(r"(?<=[a-z])['’]s\b")  # "Wernicke's" -> "Wernicke"
# an organ's adjective -> its noun, so "renal failure" meets "kidney failure"
ANATOMY = {"renal": "kidney", "nephric": "kidney", "hepatic": "liver", "cardiac": "heart",
           "pulmonary": "lung", "cerebral": "brain", "gastric": "stomach", "muscular": "muscle",
           "ocular": "eye", "cutaneous": "skin", "dermal": "skin", "intestinal": "intestine",
           "vesical": "bladder", "urinary": "urine", "neural": "nerve", "neuronal": "neuron",
           "arterial": "artery", "venous": "vein", "osseous": "bone", "hematologic": "blood",
           "haematological": "blood", "hematological": "blood", "visual": "vision",
           "auditory": "hearing", "myocardial": "myocardium", "spinal": "spine"}
_STOP = frozenset({"of", "the", "in", "with", "to", "for", "by", "on", "a", "an", "due", "nos"})
_KEEP_S = ("ss", "us", "is")
# a disease name's generic head: "overactive bladder syndrome" ~ "overactive bladder"
_GENERIC = frozenset({"disease", "disorder", "syndrome", "condition"})
# derivational endings, longest first: "obese"/"obesity", "telangiectasia"/"telangiectasis"
_SUFFIXES = ("ically", "icity", "ities", "ical", "ity", "ism", "ic", "ia", "is", "y", "e", "al")


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
    text = _BRITISH.sub(lambda m: _BRITISH_MAP[m.group(0)], _POSSESSIVE.sub("", fold(text)))
    return [ANATOMY.get(w) or singular(w) for w in _NON_WORD.split(text) if w]


def stem(word: str) -> str:
    """A word without its derivational ending (stems of at least 4 letters; numbers kept)."""
    if not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def keys(name: str) -> dict[int, str]:
    """Every level's key of a name (levels whose key is empty are left out)."""
    name = name.strip()
    ws = words(name)
    bag = set(ws) - _STOP
    out = {EXACT: name, LOWER: fold(name), NORMAL: " ".join(ws), COMPACT: "".join(ws),
           BAG: " ".join(sorted(bag)), STEM: " ".join(sorted({stem(w) for w in bag - _GENERIC}))}
    return {level: key for level, key in out.items() if key}


def permuted(name: str) -> str | None:
    """MeSH's permuted "Carcinoma, Hepatocellular" as "Hepatocellular Carcinoma" (None if not one)."""
    parts = [p.strip() for p in name.split(", ")]
    if len(parts) != 2 or not all(parts) or any(c in name for c in "()[]"):
        return None
    return f"{parts[1]} {parts[0]}"
