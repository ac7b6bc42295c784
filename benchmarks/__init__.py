"""Benchmarks: the library side by side with hand-written driver code."""
