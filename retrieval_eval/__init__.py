"""Offline evaluation (BEIR format) and benchmarks; depends on the pipeline, never the reverse."""
