"""Prefect's background services (events, API logs) between test modules.

They start on first use with a client for the API that was current then, and keep it: a module
that switches to another API (a local stack's server) would otherwise send its events and logs to
the API it left, or the next module would send to a server already stopped.
"""

from __future__ import annotations

DRAIN_TIMEOUT_S = 30.0


def drain_prefect_services() -> None:
    """Deliver what Prefect's events and log workers hold, and stop them until next used."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        service.drain_all(timeout=DRAIN_TIMEOUT_S, at_exit=False)
