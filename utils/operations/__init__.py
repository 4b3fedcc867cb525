"""Operation classes per aggregate; import them from ``utils.db_operations``."""
