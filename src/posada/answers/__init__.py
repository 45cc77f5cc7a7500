"""Answering a guest's message: the pipeline, its responders and its routes."""
