"""What the workers answer through Celery's remote control: which queues each consumes.

A broadcast on the broker, answered by each worker's consumer: a worker that beats in the
database but does not answer has a consumer that stopped (celery#8030). The embedded broker
(kombu's SQLAlchemy transport) has no broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from celery import Celery

from personal_assistant.doctor.report import one_line


@dataclass(frozen=True)
class RemoteFacts:
    supported: bool
    error: str = ""
    queues: dict[str, tuple[str, ...]] = field(default_factory=dict)  # worker -> its queues


def read_remote(app: Celery, *, expected: int, timeout: float = 4.0) -> RemoteFacts:
    """Ask every worker for its queues; stop waiting once ``expected`` have answered."""
    try:
        replies = app.control.broadcast(
            "active_queues", reply=True, timeout=timeout, limit=expected or None
        )
    except Exception as exc:  # the broker is away, or has no broadcast
        return RemoteFacts(True, one_line(exc))
    found: dict[str, tuple[str, ...]] = {}
    for reply in replies or []:
        for worker, queues in reply.items():
            found[worker] = tuple(sorted(q.get("name", "") for q in queues or []))
    return RemoteFacts(True, "", found)
