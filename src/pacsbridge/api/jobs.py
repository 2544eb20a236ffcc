"""``/api/jobs``: submit photos and videos as a job, follow it, retry or cancel it.

A submission is answered 202 only once intake has stored the job whole; from
then on it is durable. Until then every failure leaves nothing behind.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations,
# and the dependency aliases they use are local to the router factories.

import logging
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, status
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool

from pacsbridge.api.auth import Principal, require_role
from pacsbridge.api.uploads import ReceivedForm, UploadError, UploadLimits, receive_form
from pacsbridge.cli_context import job_context
from pacsbridge.config import Settings
from pacsbridge.jobs import intake
from pacsbridge.jobs.store import JobNotFound, JobStore, job_view
from pacsbridge.lookup.apply import TypedContext

logger = logging.getLogger(__name__)

FILES_FIELD = "files"
CONTEXT_FIELD = "context"
JobState = Literal["queued", "running", "delivered", "partial", "failed", "cancelled"]


class ContextFields(BaseModel):
    """The ``context`` field: DESIGN.md's CONTEXT keys in snake case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    accession: str = ""
    study_uid: str = ""
    study_description: str = ""
    series_description: str = ""
    modality: str = ""
    body_part: str = ""
    laterality: str = ""
    operator: str = ""
    from_worklist: str | None = None
    from_study: str | None = None
    destinations: list[str] | None = None

    def typed(self) -> TypedContext:
        return TypedContext(
            self.patient_id, self.patient_name, self.birth_date, self.sex.upper(),
            self.accession, self.study_uid, self.study_description,
            self.series_description, self.modality.upper(), self.body_part.upper(),
            self.laterality.upper(), self.operator,
        )  # fmt: skip


class JobAccepted(BaseModel):
    id: str


# The form is read by hand (streamed to disk), so FastAPI cannot describe it.
_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILES_FIELD, CONTEXT_FIELD],
                    "properties": {
                        FILES_FIELD: {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                        CONTEXT_FIELD: {
                            "type": "string",
                            "description": "JSON: "
                            + ", ".join(ContextFields.model_fields),
                        },
                    },
                }
            }
        },
    }
}


def jobs_router(
    settings: Settings,
    store: JobStore,
    authenticated: Callable[..., Principal],
    limits: UploadLimits,
    uploads_dir: Path,
) -> APIRouter:
    """The job routes, for callers admitted by ``authenticated``."""
    router = APIRouter(
        prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(authenticated)]
    )
    Caller = Annotated[Principal, Depends(authenticated)]
    Admin = Annotated[Principal, Depends(require_role(authenticated, "admin"))]

    @router.post(
        "",
        status_code=status.HTTP_202_ACCEPTED,
        openapi_extra=_FORM_SCHEMA,
        responses={413: {"description": "over an upload limit"}},
    )
    async def submit_job(
        request: Request,
        caller: Caller,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", max_length=128)
        ] = None,
    ) -> JobAccepted:
        """Store photos and videos as one job for the context's patient."""
        folder = uploads_dir / uuid.uuid4().hex
        try:
            form = await receive_form(request, folder, limits, FILES_FIELD)
            job_id = await run_in_threadpool(
                _store_job, settings, store, form, caller, idempotency_key
            )
        finally:
            await run_in_threadpool(shutil.rmtree, folder, ignore_errors=True)
        return JobAccepted(id=job_id)

    @router.get("")
    def list_jobs(
        caller: Caller,
        state: JobState | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[dict[str, Any]]:
        """Jobs, newest first; only the caller's own unless an admin asks."""
        found = store.jobs(state, _own(caller), limit)
        return [job_view(job) for job in found]

    @router.get("/{job_id}")
    def show_job(job_id: str, caller: Caller) -> dict[str, Any]:
        """A job: its state, each object's and each destination's."""
        return _visible(store, job_id, caller)

    @router.post("/{job_id}/retry")
    def retry_job(job_id: str, caller: Admin) -> dict[str, Any]:
        """Queue the failed and cancelled deliveries again, attempts from zero."""
        _visible(store, job_id, caller)
        changed = store.retry(job_id, caller.name)
        logger.info("job %s: %d deliveries queued again by %s", job_id, changed,
                    caller.name)  # fmt: skip
        return {**job_view(store.job(job_id)), "changed": changed}

    @router.post("/{job_id}/cancel")
    def cancel_job(job_id: str, caller: Admin) -> dict[str, Any]:
        """Stop the deliveries not yet done; a running one stops after its object."""
        _visible(store, job_id, caller)
        changed = store.cancel(job_id, caller.name)
        logger.info("job %s: %d deliveries cancelled by %s", job_id, changed,
                    caller.name)  # fmt: skip
        return {**job_view(store.job(job_id)), "changed": changed}

    return router


def _store_job(
    settings: Settings,
    store: JobStore,
    form: ReceivedForm,
    caller: Principal,
    idempotency_key: str | None,
) -> str:
    unknown = sorted(set(form.fields) - {CONTEXT_FIELD})
    if unknown:
        raise UploadError(
            400,
            f"unknown form field {unknown[0]!r}: send {FILES_FIELD!r} (repeated) "
            f"and {CONTEXT_FIELD!r}",
        )
    if not form.uploads:
        raise UploadError(422, f"no files: send each in a form field {FILES_FIELD!r}")
    fields = _context_fields(form.fields.get(CONTEXT_FIELD))
    # The lookup's sentences name the patient: for a person at a terminal, not
    # for the log.
    context = job_context(
        settings, fields.typed(), fields.from_worklist, fields.from_study,
        lambda _: None,
    )  # fmt: skip
    # A key is the caller's own: another integrator's equal key is another job.
    key = f"{caller.name}/{idempotency_key}" if idempotency_key else None
    job_id = intake.submit(
        store, settings, form.uploads, context, fields.destinations, caller.name, key
    )
    logger.info("job %s accepted from %s: %d files", job_id, caller.name,
                len(form.uploads))  # fmt: skip
    return job_id


def _context_fields(raw: str | None) -> ContextFields:
    if raw is None:
        raise UploadError(422, f"the form field {CONTEXT_FIELD!r} (JSON) is missing")
    try:
        return ContextFields.model_validate_json(raw)
    except ValidationError as exc:
        # Locations and reasons only: the values are patient data.
        problems = "; ".join(
            ".".join(str(part) for part in error["loc"]) + ": " + error["msg"]
            if error["loc"]
            else error["msg"]
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise UploadError(422, f"{CONTEXT_FIELD}: {problems}") from None


def _own(caller: Principal) -> str | None:
    return None if caller.role == "admin" else caller.name


def _visible(store: JobStore, job_id: str, caller: Principal) -> dict[str, Any]:
    job = store.job(job_id)
    if _own(caller) not in (None, job.submitted_by):
        raise JobNotFound(f"no job {job_id}")
    return job_view(job)
