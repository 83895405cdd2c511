"""Alembic migrations; run through ``monitor.db.upgrade_database`` (``monitor init``)."""
