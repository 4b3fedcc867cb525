"""Celery tasks: thin, they call utils.db_operations and analysis/."""
