"""Every Celery setting: reliability, routes, limits and the beat schedule.

The broker URL and transport options come from the Flask config (see
``tasks.celery_app.celery_init_app``); everything else is fixed here.
"""

import os

from celery.schedules import crontab

# Reliability: the database is the source of truth, the broker a doorbell.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_ignore_result = True
result_backend = None
task_time_limit = 900           # hard limit: the longest site crawl
task_soft_time_limit = 840
broker_connection_retry_on_startup = True
broker_connection_max_retries = None
worker_cancel_long_running_tasks_on_connection_loss = False
# Redis re-delivers an unacked message after this long: above the longest task.
REDIS_VISIBILITY_TIMEOUT = 3600

# Monitoring (Flower).
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True

task_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# Task modules imported explicitly so every worker knows every task.
imports = ("tasks.analysis_tasks", "tasks.maintenance_tasks", "tasks.monitoring_tasks")

beat_schedule = {
    "cleanup-stale-db-sessions": {
        "task": "maintenance.cleanup_stale_db_sessions",
        "schedule": 300.0,
    },
    "requeue-stalled-sites": {
        "task": "pipeline.requeue_stalled_sites",
        "schedule": float(os.environ.get("REQUEUE_INTERVAL_SECONDS", 60)),
    },
    "optimize-database-nightly": {
        "task": "maintenance.optimize_database",
        "schedule": crontab(hour=3, minute=17),
    },
    "retention-nightly": {
        "task": "maintenance.prune_retention",
        "schedule": crontab(hour=3, minute=47),
    },
    "dispatch-watchlists": {"task": "monitoring.dispatch_watchlists", "schedule": 60.0},
    "publish-process-snapshot": {
        "task": "maintenance.publish_snapshot",
        "schedule": 30.0,
    },
}

# Beat runs once: the active scheduler holds a lock in Redis (utils/beat_lock.py); another
# beat process stands by and takes over when the holder dies. Its schedule store is replaced
# atomically and starts from any state of its file (utils/beat_schedule.py).
beat_scheduler = "utils.beat_lock:LockedSafeScheduler"
