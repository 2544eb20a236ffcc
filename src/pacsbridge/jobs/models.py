"""The tables of the job store (SQLAlchemy 2). Alembic's migrations create them.

The store may hold patient identifiers (the job's context): the database is the
record of who sent what. Logs never do.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Job(Base):
    """One submission: its files, its context, and a delivery per destination."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    submitted_by: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    context: Mapped[dict[str, object]] = mapped_column(JSON)
    series: Mapped[dict[str, object]] = mapped_column(JSON)
    folder: Mapped[str] = mapped_column(String(300))  # under data_dir
    originals_removed_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True)
    )
    items: Mapped[list[Item]] = relationship(
        back_populates="job", order_by="Item.position"
    )
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="job", order_by="Delivery.destination"
    )


class Item(Base):
    """One input file and the object made of it (or each part of a long video)."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # the Instance Number
    filename: Mapped[str] = mapped_column(String(300))  # as the client named it
    path: Mapped[str] = mapped_column(String(300))  # the input, under data_dir
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    transfer_syntax: Mapped[str] = mapped_column(String(64))
    video: Mapped[dict[str, object] | None] = mapped_column(JSON)
    notes: Mapped[list[str]] = mapped_column(JSON)
    job: Mapped[Job] = relationship(back_populates="items")


class Delivery(Base):
    """A job's objects to one destination: claimed, sent, retried, recorded."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("job_id", "destination"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    destination: Mapped[str] = mapped_column(String(64))
    # queued | running | retrying | delivered | failed | cancelled
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str] = mapped_column(Text, default="")
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    job: Mapped[Job] = relationship(back_populates="deliveries")
    objects: Mapped[list[ObjectOutcome]] = relationship(back_populates="delivery")


class ObjectOutcome(Base):
    """What a destination said of one object: stored once means never sent again."""

    __tablename__ = "object_outcomes"
    __table_args__ = (UniqueConstraint("delivery_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    state: Mapped[str] = mapped_column(String(16))  # stored | warning | failed
    status: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    delivery: Mapped[Delivery] = relationship(back_populates="objects")


class AuditEvent(Base):
    """Who did what to which job and destination, and when."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(String(32), index=True)
    destination: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, object]] = mapped_column(JSON)


class User(Base):
    """A person who signs in: clinician or admin."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
