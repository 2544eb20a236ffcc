"""Applying a chosen order to a job: every object inherits it exactly.

IHE RAD TF-2x Appendix A says what an image takes from its worklist entry: the
patient's identity and demographics, the Study Instance UID, the Accession
Number, the Referring Physician, the Requested Procedure (its ID as the Study
ID, its description as the Study Description, its code as the Procedure Code),
the scheduled step, and the step's Modality. An existing study gives its patient
and its study attributes. What a person typed wins, field by field, and each
replacement is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from pacsbridge.context import CaptureContext, Code, Order, Patient
from pacsbridge.errors import ContextError

_DEFAULT_MODALITY = "XC"


@dataclass(frozen=True)
class TypedContext:
    """The context a person typed; empty values were not typed."""

    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    accession_number: str = ""
    study_instance_uid: str = ""
    study_description: str = ""
    series_description: str = ""
    modality: str = ""
    body_part: str = ""
    laterality: str = ""
    operator: str = ""


# The option that types each field, and the attribute it holds: for reports.
_IDENTITY = frozenset({"patient_id", "study_instance_uid"})
_NAMES = {
    "patient_id": ("--patient-id", "Patient ID"),
    "patient_name": ("--patient-name", "Patient Name"),
    "birth_date": ("--birth-date", "Patient Birth Date"),
    "sex": ("--sex", "Patient Sex"),
    "accession_number": ("--accession", "Accession Number"),
    "study_instance_uid": ("--study-uid", "Study Instance UID"),
    "study_description": ("--study-description", "Study Description"),
    "modality": ("--modality", "Modality"),
}


def typed_context(typed: TypedContext) -> CaptureContext:
    """The context of a job whose patient and study were typed in full."""
    return CaptureContext(
        patient=Patient(typed.patient_id, typed.patient_name, typed.birth_date,
                        typed.sex),
        accession_number=typed.accession_number,
        study_instance_uid=typed.study_instance_uid,
        study_description=typed.study_description,
        series_description=typed.series_description,
        modality=typed.modality or _DEFAULT_MODALITY,
        body_part=typed.body_part,
        laterality=typed.laterality,
        operator=typed.operator,
    )  # fmt: skip


def context_from_order(
    order: Order, typed: TypedContext
) -> tuple[CaptureContext, list[str]]:
    """The job's context from ``order`` with the typed values over it, and a
    sentence for each typed value that replaced one of the order's."""
    # The typed values alone first: a wrong one is the person's, not the entry's.
    # (A stand-in ID lets them be checked when no Patient ID was typed.)
    typed_context(replace(typed, patient_id=typed.patient_id or "-"))
    _check_decoded(order)
    _check_name_shape(order)
    order, notes = _writable_codes(order)
    inherited = _inherited(order)
    merged = {}
    for field in fields(TypedContext):
        mine, theirs = getattr(typed, field.name), inherited.get(field.name, "")
        merged[field.name] = mine or theirs
        if mine and theirs and mine != theirs:
            option, attribute = _NAMES[field.name]
            if field.name in _IDENTITY:
                # Another patient's ID, or another study, on this entry's values
                # would file one patient's pictures under another.
                raise ContextError(
                    f"{option} differs from the {order.source} entry's {attribute}: "
                    f"leave out {option}, or the --from-* option and type the "
                    "whole context"
                )
            notes.append(f"{option} replaces the {order.source} entry's {attribute}")

    try:
        order.check()
        context = replace(
            typed_context(TypedContext(**merged)),
            referring_physician=order.referring_physician,
            study_id=order.study_id or order.requested_procedure_id,
            study_date=order.study_date,  # checked here, by the CaptureContext
            study_time=order.study_time,
            order=order,
        )
    except ContextError as exc:
        raise ContextError(
            f"with the {order.source} entry's values: {exc} ({_remedy(str(exc))})"
        ) from None
    return context, notes


def _remedy(problem: str) -> str:
    for option, attribute in _NAMES.values():
        if problem.startswith(attribute):
            return f"type {option} to replace it"
    return "it must be corrected where the entry is kept"


def _inherited(order: Order) -> dict[str, str]:
    values = {
        "patient_id": order.patient_id,
        "patient_name": order.patient_name,
        "birth_date": order.birth_date,
        "sex": order.sex,
        "accession_number": order.accession_number,
        "study_instance_uid": order.study_instance_uid,
    }
    if order.source == "worklist":
        values["study_description"] = order.requested_procedure_description
        # The step's modality; a study's Modalities in Study says nothing about
        # the series we add, so it keeps ours.
        values["modality"] = order.modality
    else:
        values["study_description"] = order.study_description
    return values


def _check_name_shape(order: Order) -> None:
    # A component group of separators alone ("^", "Yamada^Tarou=^=^") is what a
    # provider sends when it dropped the characters its own character set could
    # not hold (Orthanc with its default Latin-1 does): not a name to file under.
    for group in order.patient_name.split("="):
        if group and not group.replace("^", "").strip():
            raise ContextError(
                f"the {order.source} entry's Patient Name has a component group "
                "without a name in it: the provider probably dropped characters "
                "its character set cannot hold (for Orthanc, set DefaultEncoding "
                "to Utf8)"
            )


def _check_decoded(order: Order) -> None:
    # U+FFFD is what a decoder leaves for bytes its character set cannot read:
    # a name written with it would be a wrong name.
    for field in fields(Order):
        value = getattr(order, field.name)
        if isinstance(value, str) and "\ufffd" in value:
            raise ContextError(
                f"the {order.source} entry's {field.name.replace('_', ' ')} could "
                "not be decoded with its character set (set lookup.default_charset "
                "to the one the provider really sends)"
            )


def _writable_codes(order: Order) -> tuple[Order, list[str]]:
    notes: list[str] = []

    def keep(codes: tuple[Code, ...], what: str) -> tuple[Code, ...]:
        kept = []
        for number, code in enumerate(codes, 1):
            problem = code.problem()
            if problem is None:
                kept.append(code)
            else:
                notes.append(f"the {what} item {number} is left out: {problem}")
        return tuple(kept)

    return replace(
        order,
        requested_procedure_codes=keep(
            order.requested_procedure_codes, "Requested Procedure Code"
        ),
        scheduled_protocol_codes=keep(
            order.scheduled_protocol_codes, "Scheduled Protocol Code"
        ),
    ), notes
