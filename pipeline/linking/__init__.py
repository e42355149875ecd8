"""Concept linking to MeSH: lexicon sources, name variants, abbreviations, the linker."""
