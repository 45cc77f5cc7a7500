"""Outside calls behind small Protocols: embeddings now, LLMs later."""
