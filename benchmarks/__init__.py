"""Benchmarks: figures measured on the real code paths; ``make bench`` runs them all."""
