"""The mining job on Ray Data (config, plan, stages, GPU stage, sink); PubMed reading lives in `pubmed/`."""
