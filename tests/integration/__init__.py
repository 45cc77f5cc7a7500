"""Tests against the real embedded PostgreSQL, Redis, the local model and real HTTP."""
