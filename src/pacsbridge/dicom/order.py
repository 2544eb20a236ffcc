"""The order's attributes in an image: what a worklist entry hands down to it.

IHE RAD TF-2x Appendix A (attribute consistency between the worklist and the
images) names the copies: the Request Attributes Sequence of the General Series
module (PS3.3 C.7.3.1, its macro in Table 10-9) carries the requested procedure
and the scheduled step the pictures were taken for; the Procedure Code Sequence
of the General Study module takes the Requested Procedure Code Sequence; the
Performed Protocol Code Sequence takes the Scheduled Protocol Code Sequence.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pacsbridge.context import Code, Order


def write_order(ds: Dataset, order: Order) -> None:
    """Add the attributes a worklist entry gives every object made for it.

    The item's accession and Study Instance UID are the object's own (``ds``
    holds them already), so a typed replacement never contradicts the request.
    """
    if order.source != "worklist":
        return
    item = Dataset()
    # Requested Procedure ID and Scheduled Procedure Step ID are Type 1C, for a
    # scheduled procedure; an entry that lacks them gets no made-up ones, and
    # without a value they must be absent, not empty.
    if order.requested_procedure_id:
        item.RequestedProcedureID = order.requested_procedure_id
    if order.scheduled_procedure_step_id:
        item.ScheduledProcedureStepID = order.scheduled_procedure_step_id
    if ds.get("AccessionNumber"):
        item.AccessionNumber = ds.AccessionNumber
    item.StudyInstanceUID = ds.StudyInstanceUID
    if order.requested_procedure_description:
        item.RequestedProcedureDescription = order.requested_procedure_description
    if order.requested_procedure_codes:
        item.RequestedProcedureCodeSequence = _codes(order.requested_procedure_codes)
    if order.scheduled_procedure_step_description:
        item.ScheduledProcedureStepDescription = (
            order.scheduled_procedure_step_description
        )
    if order.scheduled_protocol_codes:
        item.ScheduledProtocolCodeSequence = _codes(order.scheduled_protocol_codes)
    ds.RequestAttributesSequence = Sequence([item])

    if order.requested_procedure_codes:
        ds.ProcedureCodeSequence = _codes(order.requested_procedure_codes)
    if order.scheduled_protocol_codes:
        ds.PerformedProtocolCodeSequence = _codes(order.scheduled_protocol_codes)
    if order.scheduled_procedure_step_description:
        ds.PerformedProcedureStepDescription = (
            order.scheduled_procedure_step_description
        )


def _codes(codes: Iterable[Code]) -> Sequence:
    return Sequence([_code_item(code) for code in codes])


def _code_item(code: Code) -> Dataset:
    # PS3.3 8.8: a value longer than 16 characters goes in Long Code Value.
    item = Dataset()
    if len(code.value) > 16:
        item.LongCodeValue = code.value
    else:
        item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    if code.scheme_version:
        item.CodingSchemeVersion = code.scheme_version
    item.CodeMeaning = code.meaning
    return item
