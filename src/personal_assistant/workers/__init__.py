"""Celery side: the app, its routing table, task shells, the beat scheduler, utilities."""
