"""Health: worker heartbeats."""
