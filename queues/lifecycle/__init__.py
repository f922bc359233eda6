"""Every write of jobs, queues, dead letters and workers: the one owner of their lifecycle.

Split by who asks: ``enqueue`` (producers), ``leases`` (workers and TCP clients:
claims, starts, renewals), ``handback`` (held jobs back to their queue), ``outcomes``
(how attempts end), ``operator`` (cancel, retry, replay, delete), ``queues`` (create,
configure, pause, purge, delete), ``workers`` (the registry), ``workflows`` with
``dependencies`` (steps that wait for others, batches and their callbacks),
``maintenance`` (recovery, promotion, quarantine, pruning) and ``payloads``
(re-encryption under a new key). Every door calls these, never the models' own writes.
"""

from .enqueue import enqueue, enqueue_many, get_queue, stored_arguments
from .handback import release, requeue_cut
from .leases import claim, renew_leases, report_progress, start
from .maintenance import promote_due, prune_finished, quarantine_job, recover_lost, sweep_unreadable
from .operator import cancel, delete_jobs, replay, replay_many, retry
from .outcomes import finish
from .payloads import Rotation, rotate_keys
from .queues import SETTINGS, create_queue, delete_queue, purge_queue, set_paused, update_queue
from .workers import count_work, heartbeat, lease_duration, register_worker, set_concurrency, stop_worker
from .workflows import cancel_workflow, create_workflow, get_workflow, step_job_id

__all__ = [
    "SETTINGS", "Rotation", "cancel", "cancel_workflow", "claim", "count_work", "create_queue",
    "create_workflow", "delete_jobs", "delete_queue", "enqueue", "enqueue_many", "finish", "get_queue",
    "get_workflow", "heartbeat", "lease_duration", "promote_due", "prune_finished", "purge_queue",
    "quarantine_job", "recover_lost", "register_worker", "release", "renew_leases", "replay",
    "replay_many", "report_progress", "requeue_cut", "retry", "rotate_keys", "set_concurrency",
    "set_paused", "start", "step_job_id", "stop_worker", "stored_arguments", "sweep_unreadable",
    "update_queue",
]  # fmt: skip
