"""Benchmark, workload and load test."""
