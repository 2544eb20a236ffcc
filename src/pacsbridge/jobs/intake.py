"""Intake: uploaded files become a stored job, whole, or nothing at all.

The files are moved into the job's folder, checked and prepared with the same
rules as the command line, and the job, its objects and its deliveries are
committed in one transaction. Only then does the caller answer "accepted". A bad
file rejects the job: its folder is removed and nothing is queued.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pacsbridge.config import Settings
from pacsbridge.context import CaptureContext
from pacsbridge.dicom.objects import JobObjects
from pacsbridge.errors import InputRejected
from pacsbridge.jobs import records
from pacsbridge.jobs.store import JobStore

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Upload:
    """A file a client sent: the name it gave, and where it was saved."""

    filename: str
    path: Path


def submit(
    store: JobStore,
    settings: Settings,
    uploads: Sequence[Upload],
    context: CaptureContext,
    destinations: Sequence[str] | None,
    submitted_by: str,
    idempotency_key: str | None = None,
) -> str:
    """Store a job for ``uploads``; its id. The uploads are moved, never copied.

    InputRejected names each bad file by the client's name; ConfigError an
    unknown or disabled destination. Either way nothing is kept.
    """
    if idempotency_key:
        existing = store.find_by_idempotency_key(idempotency_key)
        if existing is not None:
            _discard(uploads)
            return existing
    try:
        wanted = list(destinations) if destinations else None
        names = [d.name for d in settings.pick_destinations(wanted)]
    except Exception:
        _discard(uploads)
        raise

    job_id = uuid.uuid4().hex
    data_dir = settings.local.data_dir
    folder = data_dir / "jobs" / job_id
    try:
        inputs = _move_in(uploads, folder / "inputs")
        filenames = {path: upload.filename for path, upload in inputs}
        try:
            job = JobObjects.plan(
                [path for path, _ in inputs], context, settings,
                work_dir=folder / "work",
            )  # fmt: skip
        except InputRejected as exc:
            raise _by_client_names(exc, filenames) from None
        # The 202 promises the files survive a power cut, not only the row.
        _sync_tree(folder)
        stored = store.create_job(
            job_id,
            submitted_by,
            idempotency_key or None,
            records.context_record(context),
            records.series_record(job.series),
            str(folder.relative_to(data_dir)),
            records.new_items(job, filenames, data_dir),
            names,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        _discard(uploads)
        raise
    if stored != job_id:  # the same key won a race: keep the first job only
        shutil.rmtree(folder, ignore_errors=True)
    return stored


def remove_orphans(store: JobStore, data_dir: Path, older_than: float = 3600) -> int:
    """Delete job folders with no job stored: a kill between the move and the
    commit leaves one. Only folders untouched for ``older_than`` seconds, so an
    intake under way on another node keeps its own; how many were removed."""
    jobs = data_dir / "jobs"
    if not jobs.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for folder in jobs.iterdir():
        try:
            stale = folder.stat().st_mtime < cutoff
        except OSError:
            continue
        if stale and not store.has_job(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _sync_tree(folder: Path) -> None:
    # fsync every file, then every folder up to the jobs folder: a rename is
    # durable only once its directory is.
    for path in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
        _fsync(path)
    for path in (folder, folder.parent):
        _fsync(path)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _move_in(uploads: Sequence[Upload], folder: Path) -> list[tuple[Path, Upload]]:
    # Our own names: a client's name may hold "../", control characters or
    # nothing at all. The position keeps two "IMG_0001.JPG" apart.
    folder.mkdir(parents=True, exist_ok=True)
    moved = []
    for number, upload in enumerate(uploads, start=1):
        stem = _UNSAFE.sub("_", Path(upload.filename).name)[-80:].lstrip(".")
        target = folder / f"{number:04d}-{stem or 'file'}"
        shutil.move(upload.path, target)
        moved.append((target, upload))
    return moved


def _by_client_names(exc: InputRejected, names: dict[Path, str]) -> InputRejected:
    rejected = [
        InputRejected(names.get(r.path, r.path.name), r.problem) for r in exc.rejected
    ]
    return InputRejected.many(rejected)


def _discard(uploads: Sequence[Upload]) -> None:
    for upload in uploads:
        upload.path.unlink(missing_ok=True)
