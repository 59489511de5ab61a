"""Reproducible speed and memory benchmarks (not tests); results land in benchmarks/results/."""
