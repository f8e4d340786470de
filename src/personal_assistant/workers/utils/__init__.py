"""Monitoring utilities: progress-based health of the scheduler and the workers."""
