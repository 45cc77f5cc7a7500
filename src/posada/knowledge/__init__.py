"""A hotel's knowledge: ingest of Markdown documents, FAQ extraction and retrieval."""
