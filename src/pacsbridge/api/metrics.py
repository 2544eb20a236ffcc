"""``/metrics``: the job store's counts in Prometheus' text format.

Read from the store at each scrape, not counted in this process: any node
answers for the whole deployment, and a restart loses nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select

from pacsbridge.jobs.models import Delivery, Job
from pacsbridge.jobs.store import JobStore, job_state

JOB_STATES = ("queued", "running", "delivered", "partial", "failed", "cancelled")
DELIVERY_STATES = ("queued", "running", "retrying", "delivered", "failed", "cancelled")


class StoreCollector:
    """Jobs by state, deliveries by destination and state, bytes sent."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "pacsbridge_jobs", "Jobs by state (as GET /api/jobs shows it).",
            labels=["state"],
        )  # fmt: skip
        for state, count in self._job_states().items():
            jobs.add_metric([state], count)
        yield jobs

        deliveries = GaugeMetricFamily(
            "pacsbridge_deliveries", "Deliveries by destination and state.",
            labels=["destination", "state"],
        )  # fmt: skip
        sent = CounterMetricFamily(
            "pacsbridge_sent_bytes", "Bytes of DICOM data sent, by destination.",
            labels=["destination"],
        )  # fmt: skip
        for destination, counts, sent_bytes in self._deliveries():
            for state in DELIVERY_STATES:
                deliveries.add_metric([destination, state], counts[state])
            sent.add_metric([destination], sent_bytes)
        yield deliveries
        yield sent

    def _job_states(self) -> dict[str, int]:
        with self.store.session() as s:
            rows = s.execute(select(Delivery.job_id, Delivery.state).distinct()).all()
        per_job: dict[str, set[str]] = {}
        for job_id, state in rows:
            per_job.setdefault(job_id, set()).add(state)
        # A job's state follows from the set of its deliveries' states alone:
        # derive it once per distinct set, the same way job_view does.
        counts = dict.fromkeys(JOB_STATES, 0)
        for states, jobs in Counter(frozenset(s) for s in per_job.values()).items():
            stand_in = Job(deliveries=[Delivery(state=state) for state in states])
            counts[job_state(stand_in)] += jobs
        return counts

    def _deliveries(self) -> list[tuple[str, Counter[str], int]]:
        with self.store.session() as s:
            counted = s.execute(
                select(Delivery.destination, Delivery.state, func.count()).group_by(
                    Delivery.destination, Delivery.state
                )
            ).all()
            sent = s.execute(
                select(Delivery.destination, func.sum(Delivery.bytes_sent)).group_by(
                    Delivery.destination
                )
            ).all()
        by_destination: dict[str, Counter[str]] = {}
        for destination, state, count in counted:
            by_destination.setdefault(destination, Counter())[state] = count
        return [
            (destination, by_destination.get(destination, Counter()), int(total or 0))
            for destination, total in sorted(sent)
        ]


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry's metrics in the Prometheus text format."""
    return generate_latest(registry)


def registry_for(store: JobStore) -> CollectorRegistry:
    """A registry of its own per app: two apps in one process do not collide."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry
