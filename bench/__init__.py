"""Benchmarks that span services (results in bench/results)."""
