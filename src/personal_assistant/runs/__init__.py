"""Runs: the scheduler that claims due tasks, the worker's processing of a run, its storage."""
