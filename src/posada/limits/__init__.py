"""Abuse limits: buckets shared by every process, the login throttle, chat rate limits."""
