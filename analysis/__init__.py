"""Pure analysis: bytes in, facts out. Imports nothing of the app (no Flask, Celery or database)."""
