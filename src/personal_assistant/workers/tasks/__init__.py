"""Celery task modules, one per queue."""
