"""PubMed/MEDLINE: the XML format, its fields, Arrow schemas, the Ray read, NLM update rules, E-utilities."""
