"""Benchmarks: each measures the real engine and prints a JSON object as its last line."""
