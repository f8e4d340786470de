"""Background AI tasks for a personal assistant.

PostgreSQL (or SQLite, the embedded default) is the source of truth; Celery moves work between
processes. Importing this package has no side effects.
"""

__version__ = "0.1.0"
