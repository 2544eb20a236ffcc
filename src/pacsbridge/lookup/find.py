"""C-FIND as an SCU: one query on one association, every answer collected.

PS3.4 C.4.1.1.4 (and K.4.1.1.4 for the worklist) gives the statuses: 0xFF00 and
0xFF01 pending, each with one answer; 0x0000 the end; 0xFE00 cancelled; anything
else a failure. Only a query that ends in success is an answer: a failure, a
cancel, an abort or a time-out is an error naming the provider, never an empty
list.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.association import Association

from pacsbridge.association import Peer, open_association, presentation_context
from pacsbridge.config import LocalSettings
from pacsbridge.errors import LookupFailed

logger = logging.getLogger(__name__)

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
_MODELS = {MODALITY_WORKLIST_FIND: "worklist", STUDY_ROOT_FIND: "Study Root"}

_PENDING = frozenset({0xFF00, 0xFF01})
_CANCELLED = 0xFE00
_FAILURES = {
    0xA700: "out of resources",
    0xA900: "the identifier does not match the SOP class",
    0x0122: "the SOP class is not supported",
}
_MESSAGE_ID = 1


@dataclass(frozen=True)
class FindResult:
    """The answers of one query; ``truncated`` when the limit stopped it early;
    ``unreadable`` counts the pending answers whose identifier could not be
    decoded."""

    answers: list[Dataset]
    truncated: bool
    unreadable: int
    seconds: float


def find(
    peer: Peer,
    local: LocalSettings,
    model: str,
    identifier: Dataset,
    max_results: int,
) -> FindResult:
    """Send one C-FIND and collect its answers, at most ``max_results``.

    Past the limit a C-CANCEL asks the provider to stop (PS3.7 9.3.2.3); the
    answers kept are the first ``max_results``.
    """
    started = time.perf_counter()
    contexts = [
        presentation_context(model, (ExplicitVRLittleEndian, ImplicitVRLittleEndian))
    ]
    with open_association(peer, local, contexts, LookupFailed) as assoc:
        answers, truncated, unreadable = _collect(
            assoc, peer, model, identifier, max_results
        )
    seconds = time.perf_counter() - started
    logger.info(
        "%s C-FIND to %s: %d answers in %.2f s%s",
        _MODELS.get(model, model),
        peer.label,
        len(answers),
        seconds,
        " (limit reached)" if truncated else "",
    )
    if unreadable:
        logger.warning("%d answers of %s could not be decoded", unreadable, peer.label)
    return FindResult(answers, truncated, unreadable, seconds)


def _collect(
    assoc: Association,
    peer: Peer,
    model: str,
    identifier: Dataset,
    max_results: int,
) -> tuple[list[Dataset], bool, int]:
    answers: list[Dataset] = []
    cancelled: float | None = None  # when we sent the C-CANCEL
    unreadable = 0
    responses = assoc.send_c_find(identifier, model, msg_id=_MESSAGE_ID)
    for status, answer in responses:
        code = _status_code(status, peer)
        if code in _PENDING:
            if cancelled is not None:
                # Answers already on their way when we cancelled; a provider that
                # ignores the cancel is cut off after its time-out.
                if time.monotonic() - cancelled > peer.timeout:
                    logger.warning("%s ignored the C-CANCEL: aborted", peer.label)
                    assoc.abort()
                    return answers, True, unreadable
                continue
            if answer is None:  # pynetdicom could not decode it
                unreadable += 1
            else:
                answers.append(answer)
            if len(answers) > max_results:
                cancelled = time.monotonic()
                answers = answers[:max_results]
                _cancel(assoc, model)
            continue
        if code == 0x0000:
            return answers, cancelled is not None, unreadable
        if code == _CANCELLED and cancelled is not None:
            return answers, True, unreadable
        raise LookupFailed(_failure_text(peer, code))
    raise LookupFailed(f"{peer} ended the C-FIND without a final status")


def _status_code(status: Dataset, peer: Peer) -> int:
    if "Status" not in status:
        # pynetdicom's sign for no answer: the association was aborted, the
        # DIMSE time-out passed, or the answer could not be decoded.
        raise LookupFailed(
            f"{peer} gave no C-FIND answer within {peer.timeout:g} s, or the "
            "association was aborted"
        )
    return int(status.Status)


def _cancel(assoc: Association, model: str) -> None:
    for cx in assoc.accepted_contexts:
        if cx.abstract_syntax == model and cx.context_id is not None:
            assoc.send_c_cancel(_MESSAGE_ID, cx.context_id)
            return


def _failure_text(peer: Peer, code: int) -> str:
    if code == _CANCELLED:
        meaning = "the query was cancelled"
    elif code in _FAILURES:
        meaning = _FAILURES[code]
    elif 0xC000 <= code <= 0xCFFF:
        meaning = "unable to process"
    else:
        meaning = "failed"
    # The provider's Error Comment is left out: it is free text about a query
    # for a patient, and may name them.
    return f"{peer} answered the C-FIND with status 0x{code:04X} ({meaning})"
