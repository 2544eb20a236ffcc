"""The job store: jobs, deliveries and outcomes in SQLite or PostgreSQL.

SQLite (WAL mode, in the data folder) by default; PostgreSQL through
``local.database_url``, where any number of workers claim deliveries with
``SELECT ... FOR UPDATE SKIP LOCKED``. Migrations run at open. A delivery is
claimed under a lease: a worker that dies holds it only until the lease ends.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload

from pacsbridge.errors import ConfigError, PacsBridgeError
from pacsbridge.jobs.models import AuditEvent, Delivery, Item, Job, ObjectOutcome

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
WAITING = ("queued", "retrying")
FINAL = ("delivered", "failed", "cancelled")


class JobNotFound(PacsBridgeError):
    """No job has that id (or the caller may not see it)."""

    exit_code = 2


@dataclass(frozen=True)
class NewItem:
    """An object of a job being stored: its identity, fixed from now on."""

    filename: str
    path: str  # relative to data_dir
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    position: int
    video: dict[str, object] | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Claim:
    """A delivery a worker holds until ``lease_until``."""

    delivery_id: int
    job_id: str
    destination: str
    attempts: int


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobStore:
    """Every read and write of jobs goes through here, one short transaction each."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def open(cls, database_url: str, data_dir: Path) -> JobStore:
        """Connect, create what is missing, and bring the schema up to date."""
        url = database_url or f"sqlite:///{data_dir / 'pacsbridge.db'}"
        if url.startswith("sqlite"):
            data_dir.mkdir(parents=True, exist_ok=True)
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except Exception as exc:  # a malformed URL or a missing driver
            raise ConfigError(f"local.database_url cannot be used: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling would defer BEGIN; claims need
            # BEGIN IMMEDIATE to take the write lock before reading.
            event.listen(engine, "begin", _sqlite_begin)
        store = cls(engine)
        store._migrate()
        return store

    def _migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                if not self.is_sqlite:
                    # One node migrates at a time; the others wait for it.
                    connection.execute(text("SELECT pg_advisory_xact_lock(5361)"))
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise ConfigError(
                f"the job store cannot be opened: {exc.orig or exc}"
            ) from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    # --- intake -------------------------------------------------------------

    def has_job(self, job_id: str) -> bool:
        with self.session() as s:
            return s.get(Job, job_id) is not None

    def find_by_idempotency_key(self, key: str) -> str | None:
        with self.session() as s:
            job_id = s.scalar(select(Job.id).where(Job.idempotency_key == key))
        return job_id

    def create_job(
        self,
        job_id: str,
        submitted_by: str,
        idempotency_key: str | None,
        context: dict[str, object],
        series: dict[str, object],
        folder: str,
        items: Sequence[NewItem],
        destinations: Sequence[str],
    ) -> str:
        """Store a job whole, or return the job already stored under its key."""
        created = now()
        try:
            with self.session() as s:
                s.add(
                    Job(
                        id=job_id,
                        created_at=created,
                        submitted_by=submitted_by,
                        idempotency_key=idempotency_key,
                        context=context,
                        series=series,
                        folder=folder,
                    )
                )
                s.add_all(
                    Item(
                        job_id=job_id,
                        position=item.position,
                        filename=item.filename,
                        path=item.path,
                        sop_class_uid=item.sop_class_uid,
                        sop_instance_uid=item.sop_instance_uid,
                        transfer_syntax=item.transfer_syntax,
                        video=item.video,
                        notes=list(item.notes),
                    )
                    for item in items
                )
                s.add_all(
                    Delivery(
                        job_id=job_id,
                        destination=name,
                        state="queued",
                        attempts=0,
                        next_attempt_at=created,
                        error="",
                        bytes_sent=0,
                        updated_at=created,
                    )
                    for name in destinations
                )
                _audit(s, submitted_by, "submit", job_id, None, {"items": len(items)})
        except IntegrityError:
            existing = idempotency_key and self.find_by_idempotency_key(idempotency_key)
            if not existing:
                raise
            return existing
        logger.info("job %s stored: %d objects", job_id, len(items))
        return job_id

    # --- workers ------------------------------------------------------------

    def claim(self, owner: str, lease: dt.timedelta) -> Claim | None:
        """Take the next delivery that is due, or one whose lease ran out."""
        moment = now()
        due = (
            select(Delivery)
            .where(
                (Delivery.state.in_(WAITING) & (Delivery.next_attempt_at <= moment))
                | ((Delivery.state == "running") & (Delivery.lease_until < moment))
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(1)
        )
        if not self.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        with self.session() as s:
            delivery = s.scalar(due)
            if delivery is None:
                return None
            if delivery.state == "running":
                logger.warning(
                    "delivery %d of job %s: lease of %s ran out, taken over",
                    delivery.id, delivery.job_id, delivery.lease_owner,
                )  # fmt: skip
            delivery.state = "running"
            delivery.lease_owner = owner
            delivery.lease_until = moment + lease
            delivery.attempts += 1
            delivery.updated_at = moment
            return Claim(
                delivery.id, delivery.job_id, delivery.destination, delivery.attempts
            )

    def renew(self, claim: Claim, owner: str, lease: dt.timedelta) -> bool:
        """Extend the lease; False when the delivery is no longer ours."""
        with self.session() as s:
            delivery = s.get(Delivery, claim.delivery_id, with_for_update=True)
            if delivery is None or not _held(delivery, owner):
                return False
            delivery.lease_until = now() + lease
            return True

    def still_wanted(self, claim: Claim, owner: str) -> bool:
        """Whether the worker should go on: not cancelled, not taken over."""
        with self.session() as s:
            delivery = s.get(Delivery, claim.delivery_id)
            return delivery is not None and _held(delivery, owner)

    def record_object(
        self, claim: Claim, sop_instance_uid: str, state: str, status: int | None,
        message: str,
    ) -> None:  # fmt: skip
        """Write what the destination said of one object, at once."""
        with self.session() as s:
            item_id = s.scalar(
                select(Item.id).where(Item.sop_instance_uid == sop_instance_uid)
            )
            if item_id is None:
                return
            outcome = s.scalar(
                select(ObjectOutcome).where(
                    ObjectOutcome.delivery_id == claim.delivery_id,
                    ObjectOutcome.item_id == item_id,
                )
            )
            if outcome is None:
                outcome = ObjectOutcome(delivery_id=claim.delivery_id, item_id=item_id)
                s.add(outcome)
            elif outcome.state in ("stored", "warning"):
                return  # stored once is stored
            outcome.state, outcome.status = state, status
            outcome.message, outcome.at = message, now()

    def delivered_items(self, delivery_id: int) -> set[str]:
        """SOP Instance UIDs this delivery's destination has confirmed."""
        with self.session() as s:
            rows = s.scalars(
                select(Item.sop_instance_uid)
                .join(ObjectOutcome, ObjectOutcome.item_id == Item.id)
                .where(
                    ObjectOutcome.delivery_id == delivery_id,
                    ObjectOutcome.state.in_(("stored", "warning")),
                )
            )
            return set(rows)

    def finish(
        self,
        claim: Claim,
        owner: str,
        *,
        error: str = "",
        retry_at: dt.datetime | None = None,
        bytes_sent: int = 0,
    ) -> str:
        """End an attempt: delivered (no error), retrying, or failed; the state."""
        with self.session() as s:
            delivery = s.get(Delivery, claim.delivery_id, with_for_update=True)
            if delivery is None or not _held(delivery, owner):
                return delivery.state if delivery is not None else "gone"
            moment = now()
            delivery.bytes_sent += bytes_sent
            delivery.lease_owner, delivery.lease_until = None, None
            delivery.updated_at = moment
            delivery.error = error
            if not error:
                delivery.state = "delivered"
            elif retry_at is not None:
                delivery.state, delivery.next_attempt_at = "retrying", retry_at
            else:
                delivery.state = "failed"
            _audit(
                s, owner, delivery.state, delivery.job_id, delivery.destination,
                {"attempts": delivery.attempts},
            )  # fmt: skip
            return delivery.state

    # --- people and tools ---------------------------------------------------

    def job(self, job_id: str) -> Job:
        """The job with its items and deliveries loaded, or JobNotFound."""
        with self.session() as s:
            job = s.scalar(
                select(Job)
                .where(Job.id == job_id)
                .options(
                    selectinload(Job.items),
                    selectinload(Job.deliveries).selectinload(Delivery.objects),
                )
            )
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        return job

    def jobs(
        self, state: str | None = None, submitted_by: str | None = None, limit: int = 50
    ) -> list[Job]:
        """Newest first, loaded whole (items, deliveries and their outcomes), the
        ``limit`` newest whose derived state is ``state`` when one is given."""
        query = (
            select(Job)
            .order_by(Job.created_at.desc(), Job.id)
            .options(
                selectinload(Job.items),
                selectinload(Job.deliveries).selectinload(Delivery.objects),
            )
        )
        if submitted_by is not None:
            query = query.where(Job.submitted_by == submitted_by)
        # A job's state is derived from its deliveries, so a state filter reads
        # page after page until it has found enough or run out of jobs.
        page = limit if state is None else 10 * limit
        found: list[Job] = []
        with self.session() as s:
            for offset in itertools.count(0, page):
                batch = list(s.scalars(query.offset(offset).limit(page)))
                found += [j for j in batch if state is None or job_state(j) == state]
                if len(found) >= limit or len(batch) < page:
                    return found[:limit]
        return found[:limit]  # unreachable: itertools.count never ends

    def retry(self, job_id: str, actor: str) -> int:
        """Queue the failed or cancelled deliveries of a job again; how many."""
        return self._move(job_id, actor, "retry", ("failed", "cancelled"), "queued")

    def cancel(self, job_id: str, actor: str) -> int:
        """Stop the deliveries not yet done; a running one stops after its object."""
        return self._move(
            job_id, actor, "cancel", ("queued", "retrying", "running"), "cancelled"
        )

    def _move(
        self, job_id: str, actor: str, action: str, from_states: tuple[str, ...],
        to_state: str,
    ) -> int:  # fmt: skip
        with self.session() as s:
            if s.get(Job, job_id) is None:
                raise JobNotFound(f"no job {job_id}")
            deliveries = s.scalars(
                select(Delivery)
                .where(Delivery.job_id == job_id, Delivery.state.in_(from_states))
                .with_for_update()
            ).all()
            moment = now()
            for delivery in deliveries:
                delivery.state, delivery.updated_at = to_state, moment
                delivery.lease_owner = delivery.lease_until = None
                if to_state == "queued":
                    delivery.attempts, delivery.next_attempt_at = 0, moment
                    delivery.error = ""
                _audit(s, actor, action, job_id, delivery.destination, {})
            return len(deliveries)

    def finished_jobs_before(self, moment: dt.datetime) -> list[Job]:
        """Jobs every destination has delivered, last touched before ``moment``,
        whose original files are still kept."""
        with self.session() as s:
            jobs = s.scalars(
                select(Job)
                .where(Job.originals_removed_at.is_(None))
                .options(selectinload(Job.deliveries))
            ).all()
        return [
            job
            for job in jobs
            if job.deliveries
            and all(d.state == "delivered" for d in job.deliveries)
            and max(_aware(d.updated_at) for d in job.deliveries) < moment
        ]

    def mark_originals_removed(self, job_id: str) -> None:
        with self.session() as s:
            job = s.get(Job, job_id)
            if job is not None:
                job.originals_removed_at = now()


def job_state(job: Job) -> str:
    """queued | running | delivered | partial | failed | cancelled (DESIGN.md)."""
    states = {d.state for d in job.deliveries}
    if not states:
        return "delivered"
    if "running" in states:
        return "running"
    if states & set(WAITING):
        return "queued"
    if states == {"delivered"}:
        return "delivered"
    if states == {"cancelled"}:
        return "cancelled"
    if "delivered" in states:
        return "partial"
    return "failed"


def job_view(job: Job) -> dict[str, Any]:
    """The job as the REST API and ``jobs show`` present it (DESIGN.md)."""
    outcomes: dict[int, list[ObjectOutcome]] = {}
    for delivery in job.deliveries:
        for outcome in delivery.objects:
            outcomes.setdefault(outcome.item_id, []).append(outcome)
    wanted = [d for d in job.deliveries if d.state != "cancelled"]
    items = []
    for item in job.items:
        mine = outcomes.get(item.id, [])
        stored = sum(1 for o in mine if o.state in ("stored", "warning"))
        failures = [o.message for o in mine if o.state == "failed"]
        state = "delivered" if wanted and stored >= len(wanted) else "pending"
        if failures and state != "delivered":
            state = "failed"
        items.append(
            {
                "filename": item.filename,
                "sop_instance_uid": item.sop_instance_uid,
                "state": state,
                "error": failures[-1] if failures else "",
                "notes": list(item.notes),
            }
        )
    return {
        "id": job.id,
        "state": job_state(job),
        "created_at": _aware(job.created_at).isoformat(),
        "submitted_by": job.submitted_by,
        "items": items,
        "deliveries": [
            {
                "destination": d.destination,
                "state": d.state,
                "attempts": d.attempts,
                "error": d.error,
            }
            for d in job.deliveries
        ],
    }


def _held(delivery: Delivery, owner: str) -> bool:
    return delivery.state == "running" and delivery.lease_owner == owner


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything we write is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _audit(
    s: Session, actor: str, action: str, job_id: str | None,
    destination: str | None, detail: dict[str, object],
) -> None:  # fmt: skip
    s.add(
        AuditEvent(
            at=now(),
            actor=actor,
            action=action,
            job_id=job_id,
            destination=destination,
            detail=detail,
        )
    )


def _sqlite_pragmas(connection: Any, _: object) -> None:
    connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")  # a 202 survives a power cut
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
