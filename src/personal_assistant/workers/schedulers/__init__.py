"""Scheduler utilities: the beat scheduler that also claims due AI tasks."""
