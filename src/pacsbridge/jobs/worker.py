"""The worker: claim a delivery, send what the destination lacks, record it.

Each object's outcome is committed as soon as the destination answers, so a
crash at any moment resends at most the object that was on the wire (a PACS
keeps one instance per SOP Instance UID). Failures are retried with exponential
backoff and jitter until ``jobs.max_attempts``; then the delivery stays failed
and visible until someone retries or cancels it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import shutil
import socket
import threading
import uuid

from pacsbridge.config import DicomDestination, Settings
from pacsbridge.deliver import dimse
from pacsbridge.dicom.objects import PlannedObject
from pacsbridge.errors import AssociationError
from pacsbridge.jobs import records
from pacsbridge.jobs.store import Claim, JobStore, now

logger = logging.getLogger(__name__)


class Worker:
    """One delivery at a time, until told to stop."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._lease = dt.timedelta(seconds=settings.jobs.lease_seconds)
        self._stop = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; idle polls every ``jobs.poll_seconds``.

        A delivery under way stops after the object on the wire when ``stop``
        is set; it is retried at once by whichever worker runs next.
        """
        self._stop = stop
        logger.info("worker %s started", self.name)
        last_cleanup = 0.0
        while not stop.is_set():
            try:
                busy = self.run_once()
                if not busy and stop.wait(0) is False:
                    moment = now().timestamp()
                    if moment - last_cleanup > 60:
                        self.remove_old_originals()
                        last_cleanup = moment
            except Exception as exc:
                # A store that is briefly unreachable must not end the worker.
                # The type only: a message may quote a file named after the patient.
                logger.error("worker %s: attempt failed (%s)", self.name,
                             type(exc).__name__)  # fmt: skip
                busy = False
            if not busy:
                stop.wait(self.settings.jobs.poll_seconds)
        logger.info("worker %s stopped", self.name)

    def run_once(self) -> bool:
        """Claim and work one delivery; False when nothing was due."""
        claim = self.store.claim(self.name, self._lease)
        if claim is None:
            return False
        logger.info(
            "worker %s: job %s to %s, attempt %d",
            self.name, claim.job_id, claim.destination, claim.attempts,
        )  # fmt: skip
        stop_renewing = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(claim, stop_renewing), daemon=True
        )
        renewer.start()
        try:
            error, sent = self._deliver(claim)
        except Exception as exc:  # a bug must fail the attempt, not the worker
            logger.error("job %s: delivery attempt crashed (%s)", claim.job_id,
                         type(exc).__name__)  # fmt: skip
            error, sent = f"internal error: {type(exc).__name__}", 0
        finally:
            stop_renewing.set()
            renewer.join()
        retry_at = self._retry_at(claim.attempts) if error else None
        if error and self._stop.is_set():
            retry_at = now()  # stopped, not failed: the next worker goes on
        state = self.store.finish(
            claim, self.name, error=error, retry_at=retry_at, bytes_sent=sent
        )
        logger.info("job %s to %s: %s", claim.job_id, claim.destination, state)
        return True

    def _deliver(self, claim: Claim) -> tuple[str, int]:
        destination = self._destination(claim.destination)
        if destination is None:
            return f"destination {claim.destination!r} is not configured", 0
        job = self.store.job(claim.job_id)
        done = self.store.delivered_items(claim.delivery_id)
        missing = [item for item in job.items if item.sop_instance_uid not in done]
        if not missing:
            return "", 0
        objects = records.restore(job, self.settings, missing)

        def sent(obj: PlannedObject, outcome: dimse.ObjectOutcome) -> None:
            if outcome.state != "not-sent":
                self.store.record_object(
                    claim, str(obj.sop_instance_uid), outcome.state,
                    outcome.status, outcome.message,
                )  # fmt: skip
            # Between objects: a cancel or a stop ends the association here
            # (an abort), and the objects not sent stay unsent.
            if self._stop.is_set():
                raise AssociationError("the worker is stopping")
            if not self.store.still_wanted(claim, self.name):
                raise AssociationError("the delivery was cancelled")

        report = dimse.store(destination, self.settings.local, objects, on_sent=sent)
        if report.delivered:
            return "", report.bytes_sent
        failed = [o for o in report.outcomes if not o.delivered]
        reason = report.error or failed[0].message
        return f"{len(failed)} of {len(report.outcomes)} not stored: {reason}", (
            report.bytes_sent
        )

    def _destination(self, name: str) -> DicomDestination | None:
        for destination in self.settings.destinations:
            if destination.name == name and isinstance(destination, DicomDestination):
                return destination
        return None

    def _retry_at(self, attempts: int) -> dt.datetime | None:
        jobs = self.settings.jobs
        if attempts >= jobs.max_attempts:
            return None
        # Exponential backoff with full jitter over its upper half: workers that
        # failed together do not all come back together.
        delay = min(
            jobs.retry_max_seconds, jobs.retry_base_seconds * 2 ** (attempts - 1)
        )
        return now() + dt.timedelta(seconds=delay * random.uniform(0.5, 1.0))

    def _renew(self, claim: Claim, stop: threading.Event) -> None:
        interval = self._lease.total_seconds() / 3
        while not stop.wait(interval):
            if not self.store.renew(claim, self.name, self._lease):
                logger.warning("job %s: lease lost", claim.job_id)
                return

    def remove_old_originals(self) -> None:
        """Delete the files of jobs delivered everywhere, after the retention."""
        keep = dt.timedelta(days=self.settings.jobs.retention_days)
        data_dir = self.settings.local.data_dir
        for job in self.store.finished_jobs_before(now() - keep):
            shutil.rmtree(data_dir / job.folder, ignore_errors=True)
            self.store.mark_originals_removed(job.id)
            logger.info("job %s: original files removed", job.id)
