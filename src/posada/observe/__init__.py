"""Where each request's time and money go: stages, counters, the window, Prometheus.

`context` holds the running request's figures (`RequestStats`); the database cursor,
the embedders, the pipeline and the LLM fallback chain add to it. The middleware reads
it when the response starts and ends, and hands the finished figures to the request
window (percentiles), Prometheus and the slow-request log.
"""
