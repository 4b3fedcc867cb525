"""The operations routes and tasks call: one small class per aggregate.

Each takes the session explicitly; none opens one.
"""

from utils.operations.batches import (
    BatchOps,
    ComparisonOps,
    EventOps,
    LeaseNotHeld,
    PageOps,
    SiteOps,
)
from utils.operations.pages import PageListOps
from utils.operations.reporting import ReportOps
from utils.operations.retention import RetentionOps
from utils.operations.system import (
    HealthCheckOps,
    MaintenanceOps,
    SnapshotOps,
    SystemLogOps,
)
from utils.operations.users import UserOps

__all__ = [
    "BatchOps", "ComparisonOps", "EventOps", "HealthCheckOps", "LeaseNotHeld",
    "MaintenanceOps", "PageListOps", "PageOps", "ReportOps", "RetentionOps", "SiteOps",
    "SnapshotOps", "SystemLogOps", "UserOps",
]
