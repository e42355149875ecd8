"""The mining job on Ray Data: planning/, dataflow/, records/; PubMed reading lives in `pubmed/`."""
