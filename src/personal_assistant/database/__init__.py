"""Persistence: typed SQLAlchemy models, engines for PostgreSQL and SQLite, Alembic migrations."""
