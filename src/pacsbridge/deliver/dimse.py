"""DICOM C-ECHO and C-STORE to a destination: one association per job.

PS3.4 B.2.3 gives the C-STORE statuses: 0x0000 success; 0x0001 and 0xBxxx warnings
(the object is stored: never resend it); everything else a failure.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
)
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from pacsbridge.association import Peer, open_association, presentation_context
from pacsbridge.config import DicomDestination, LocalSettings
from pacsbridge.deliver import pdata, transport
from pacsbridge.dicom.encoding import Encoded
from pacsbridge.dicom.objects import JobObjects, PlannedObject
from pacsbridge.errors import AssociationError, InputRejected

logger = logging.getLogger(__name__)

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
# Stills may fall back to uncompressed pixels. A video never does: decoded, a
# minute of HD is gigabytes, and a destination that refuses its transfer syntax
# gets a clear failure for it instead.
_DECODABLE = frozenset({SecondaryCaptureImageStorage})
# PS3.7 C: 0x0001, 0x0107 (attribute list error) and 0x0116 (value out of range)
# are warnings like 0xBxxx: the object was stored.
_WARNINGS = frozenset({0x0001, 0x0107, 0x0116})


@dataclass(frozen=True)
class ObjectOutcome:
    """What a destination said about one object."""

    sop_instance_uid: UID
    state: str  # stored | warning | failed | not-sent
    status: int | None = None
    message: str = ""
    association_lost: bool = False  # the failure ended the association

    @property
    def delivered(self) -> bool:
        return self.state in ("stored", "warning")


@dataclass
class DeliveryReport:
    """Everything one destination did with the objects of one job."""

    destination: str
    outcomes: list[ObjectOutcome] = field(default_factory=list)
    error: str = ""
    bytes_sent: int = 0
    seconds: float = 0.0

    @property
    def delivered(self) -> bool:
        return not self.error and all(o.delivered for o in self.outcomes)

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)


def echo(destination: DicomDestination, local: LocalSettings) -> float:
    """C-ECHO the destination; the round trip in seconds, or AssociationError."""
    started = time.perf_counter()
    with _association(
        destination, local, [presentation_context(Verification, UNCOMPRESSED)]
    ) as assoc:
        status = assoc.send_c_echo()
    if "Status" not in status:
        raise AssociationError(f"{_peer(destination)} did not answer the C-ECHO")
    if status.Status != 0x0000:
        code = int(status.Status)
        raise AssociationError(
            f"{_peer(destination)} answered the C-ECHO with status 0x{code:04X}"
        )
    return time.perf_counter() - started


def store(
    destination: DicomDestination,
    local: LocalSettings,
    job: JobObjects,
    on_sent: Callable[[PlannedObject, ObjectOutcome], None] | None = None,
) -> DeliveryReport:
    """Send every object of ``job`` on one association and report each outcome.

    An association that cannot be made, is aborted or times out ends the report
    with its error; objects it did not reach are ``not-sent``.
    """
    report = DeliveryReport(destination.name)
    started = time.perf_counter()
    try:
        with (
            _association(destination, local, _contexts_for(job)) as assoc,
            pdata.reactor_held(assoc),
        ):
            _send_all(assoc, destination, job, report, on_sent)
    except AssociationError as exc:
        report.error = str(exc)
    except OSError as exc:
        report.error = f"{_peer(destination)}: {exc}"
    sent = {o.sop_instance_uid for o in report.outcomes}
    report.outcomes.extend(
        ObjectOutcome(obj.sop_instance_uid, "not-sent", message=report.error)
        for obj in job.planned
        if obj.sop_instance_uid not in sent
    )
    report.seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class _Request:
    """A C-STORE request ready for the wire."""

    context_id: int
    command: bytes
    data_set: Encoded


def _send_all(
    assoc: Association,
    destination: DicomDestination,
    job: JobObjects,
    report: DeliveryReport,
    on_sent: Callable[[PlannedObject, ObjectOutcome], None] | None,
) -> None:
    accepted = {
        (UID(str(cx.abstract_syntax)), UID(str(cx.transfer_syntax[0]))): int(
            cx.context_id or 0
        )
        for cx in assoc.accepted_contexts
    }

    def prepare(number: int) -> _Request | ObjectOutcome:
        return _prepare(destination, job, job.planned[number], accepted, number + 1)

    # While the peer stores one object, a worker reads and encodes the next: the
    # two take about as long, so a job takes half the time. Two objects at most
    # are in memory at once.
    with ThreadPoolExecutor(1, thread_name_prefix="pacsbridge-prepare") as worker:
        upcoming = worker.submit(prepare, 0)
        for number, obj in enumerate(job.planned):
            prepared = upcoming.result()
            if number + 1 < len(job.planned):
                upcoming = worker.submit(prepare, number + 1)
            if isinstance(prepared, _Request):
                outcome = _send(assoc, destination, obj, prepared, number + 1)
                report.bytes_sent += prepared.data_set.length
            else:
                outcome = prepared
            report.outcomes.append(outcome)
            if on_sent is not None:
                on_sent(obj, outcome)
            if outcome.association_lost:
                raise AssociationError(outcome.message)


def _prepare(
    destination: DicomDestination,
    job: JobObjects,
    obj: PlannedObject,
    accepted: dict[tuple[UID, UID], int],
    message_id: int,
) -> _Request | ObjectOutcome:
    uid = obj.sop_instance_uid
    syntax = _accepted_syntax(obj, accepted)
    if syntax is None:
        wanted = obj.sop_class_uid.name
        if obj.sop_class_uid not in _DECODABLE:
            wanted += f" in {obj.transfer_syntax.name}"
        return ObjectOutcome(
            uid, "failed", message=f"{_peer(destination)} does not accept {wanted}"
        )
    try:
        built = job.build(obj)
    except InputRejected as exc:
        # The file changed or vanished after the job was checked.
        message = str(exc)
        if "since it was checked" not in message:
            message += " (since it was checked)"
        return ObjectOutcome(uid, "failed", message=message)
    if syntax != obj.transfer_syntax:
        built = built.uncompressed()
    return _Request(
        accepted[(obj.sop_class_uid, syntax)],
        pdata.c_store_command(message_id & 0xFFFF, obj.sop_class_uid, uid),
        built.encoded(syntax),
    )


def _send(
    assoc: Association,
    destination: DicomDestination,
    obj: PlannedObject,
    request: _Request,
    message_id: int,
) -> ObjectOutcome:
    uid = obj.sop_instance_uid
    try:
        response = pdata.send_request(
            assoc,
            request.context_id,
            request.command,
            request.data_set.parts,
            request.data_set.length,
        )
    except OSError as exc:
        assoc.abort()
        return ObjectOutcome(
            uid,
            "failed",
            message=f"{_peer(destination)}: {_connection_failure(exc)} while sending",
            association_lost=True,
        )
    return _outcome(destination, uid, message_id & 0xFFFF, response, assoc)


def _connection_failure(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "the peer stopped reading (time-out)"
    if exc.errno in (errno.EBADF, errno.EPIPE, errno.ECONNRESET):
        return "the peer closed the connection"
    return f"the connection failed ({exc.strerror or exc})"


def _accepted_syntax(
    obj: PlannedObject, accepted: dict[tuple[UID, UID], int]
) -> UID | None:
    """The object's own transfer syntax when accepted, else an uncompressed one:
    a destination that refuses JPEG Baseline gets the pixels decoded."""
    fallback: tuple[UID, ...] = UNCOMPRESSED if obj.sop_class_uid in _DECODABLE else ()
    for syntax in (obj.transfer_syntax, *fallback):
        if (obj.sop_class_uid, syntax) in accepted:
            return syntax
    return None


def _outcome(
    destination: DicomDestination,
    uid: UID,
    message_id: int,
    response: Any,
    assoc: Association,
) -> ObjectOutcome:
    if not isinstance(response, C_STORE) or response.Status is None:
        assoc.abort()
        return ObjectOutcome(
            uid,
            "failed",
            message=f"{_peer(destination)} gave no C-STORE response "
            "(the association was aborted or timed out)",
            association_lost=True,
        )
    if response.MessageIDBeingRespondedTo != message_id:
        assoc.abort()
        return ObjectOutcome(
            uid,
            "failed",
            message=f"{_peer(destination)} answered another request than ours",
            association_lost=True,
        )
    code = int(response.Status)
    if code == 0x0000:
        logger.info("stored %s on %s", uid, destination.name)
        return ObjectOutcome(uid, "stored", code)
    if code in _WARNINGS or 0xB000 <= code <= 0xBFFF:
        logger.warning(
            "stored %s on %s with warning 0x%04X", uid, destination.name, code
        )
        return ObjectOutcome(uid, "warning", code, f"stored with warning 0x{code:04X}")
    # The peer's words, shown to a person: printable characters only.
    comment = "".join(
        ch
        for ch in str(getattr(response, "ErrorComment", "") or "")
        if ch.isprintable()
    ).strip()
    logger.error("%s refused %s with status 0x%04X", destination.name, uid, code)
    text = f"refused with status 0x{code:04X}" + (f" ({comment})" if comment else "")
    return ObjectOutcome(uid, "failed", code, text)


def _contexts_for(job: JobObjects) -> list[PresentationContext]:
    # Each compressed syntax gets a context of its own, so the acceptor cannot
    # choose another one for it (PEERS: storescp and Orthanc both would), plus an
    # uncompressed context to fall back to when it refuses the compressed one.
    contexts: list[PresentationContext] = []
    wanted = sorted({(o.sop_class_uid, o.transfer_syntax) for o in job.planned})
    for sop_class in sorted({sop for sop, _ in wanted}):
        for sop, ts in wanted:
            if sop == sop_class and ts not in UNCOMPRESSED:
                contexts.append(presentation_context(sop_class, (ts,)))
        if sop_class in _DECODABLE:
            contexts.append(presentation_context(sop_class, UNCOMPRESSED))
    return contexts


def _peer(destination: DicomDestination) -> Peer:
    return Peer(
        f"destination {destination.name!r}",
        destination.ae_title,
        destination.host,
        destination.port,
        destination.timeout,
    )


@contextmanager
def _association(
    destination: DicomDestination,
    local: LocalSettings,
    contexts: list[PresentationContext],
) -> Iterator[Association]:
    with open_association(
        _peer(destination),
        local,
        contexts,
        AssociationError,
        [(evt.EVT_CONN_OPEN, transport.tune_socket)],
    ) as assoc:
        yield assoc
