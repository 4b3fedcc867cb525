"""SQLAlchemy models, one module per aggregate."""

from models.base import Base, db
from models.batch import BATCH_STATUSES, FINISHED_BATCH_STATUSES, Batch, BatchEvent, Comparison
from models.ops import MaintenanceRun, ProcessSnapshot, SystemLog
from models.page import Page
from models.site import SITE_STATUSES, Site
from models.user import ApiToken, User
from models.watchlist import Change, Notification, Watchlist, WatchlistRun

__all__ = [
    "BATCH_STATUSES", "FINISHED_BATCH_STATUSES", "SITE_STATUSES", "ApiToken", "Base", "Batch",
    "BatchEvent", "Comparison", "MaintenanceRun", "Page", "ProcessSnapshot", "Site",
    "SystemLog", "User", "db",
    "Change", "Notification", "Watchlist", "WatchlistRun",
]
