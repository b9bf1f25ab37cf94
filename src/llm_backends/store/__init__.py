"""The config store: tables, queries and Alembic migrations (SQLite or PostgreSQL)."""
