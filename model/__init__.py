"""BioGPT in torch: tokenizer, modules, loader, KV cache and generation engine (never imports ray)."""
