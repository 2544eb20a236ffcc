"""The CONTEXT options of ``dicomize`` and ``send``, and the job context they make.

A job's patient and study are typed in, or taken from a worklist entry
(``--from-worklist ACCESSION``) or an existing study (``--from-study UID``) with
the typed options over them, field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from pacsbridge import lookup
from pacsbridge.config import Settings
from pacsbridge.context import CaptureContext
from pacsbridge.errors import ContextError
from pacsbridge.lookup.apply import TypedContext, context_from_order, typed_context

# The CONTEXT options, shared by dicomize and send.
PatientId = Annotated[
    str, typer.Option("--patient-id", help="Patient ID (required).", metavar="ID")
]
PatientName = Annotated[
    str,
    typer.Option(
        "--patient-name", help="DICOM form: Family^Given^Middle.", metavar="NAME"
    ),
]
BirthDate = Annotated[
    str, typer.Option("--birth-date", help="Patient's birth date.", metavar="YYYYMMDD")
]
Sex = Annotated[
    str, typer.Option("--sex", help="Patient's sex: M, F or O.", metavar="M|F|O")
]
Accession = Annotated[
    str, typer.Option("--accession", help="Accession Number of the order.", metavar="N")
]
StudyUid = Annotated[
    str,
    typer.Option(
        "--study-uid",
        help="Add to this existing study (else a new one).",
        metavar="UID",
    ),
]
StudyDescription = Annotated[
    str, typer.Option("--study-description", help="Study Description.", metavar="TEXT")
]
SeriesDescription = Annotated[
    str,
    typer.Option("--series-description", help="Series Description.", metavar="TEXT"),
]
Modality = Annotated[
    str,
    typer.Option(
        "--modality",
        help="Modality of the series (default: the worklist step's, else XC).",
        metavar="CODE",
    ),
]
BodyPart = Annotated[
    str,
    typer.Option("--body-part", help="Body Part Examined, e.g. HAND.", metavar="CODE"),
]
Laterality = Annotated[
    str,
    typer.Option(
        "--laterality", help="Laterality of a paired body part.", metavar="R|L"
    ),
]
Operator = Annotated[
    str,
    typer.Option(
        "--operator", help="Operators' Name: who took the photos.", metavar="NAME"
    ),
]


FromWorklist = Annotated[
    str | None,
    typer.Option(
        "--from-worklist",
        help="Take patient and order from the worklist entry with this accession "
        "number.",
        metavar="ACCESSION",
    ),
]
FromStudy = Annotated[
    str | None,
    typer.Option(
        "--from-study",
        help="Add to this existing study, with its patient (Study Root lookup).",
        metavar="STUDY_UID",
    ),
]


def job_context(
    settings: Settings,
    typed: TypedContext,
    from_worklist: str | None,
    from_study: str | None,
    tell: Callable[[str], None],
) -> CaptureContext:
    """The context of a job: typed, or looked up with the typed values over it.

    ``tell`` receives the sentences a person should read: which entry the job
    is filed under and what the typed options replaced.
    """
    if from_worklist is not None and from_study is not None:
        raise ContextError("--from-worklist and --from-study exclude each other")
    if from_worklist is not None:
        order = lookup.worklist_entry(settings, from_worklist)
    elif from_study is not None:
        order = lookup.existing_study(settings, from_study)
    else:
        return typed_context(typed)
    context, notes = context_from_order(order, typed)
    patient = context.patient
    tell(
        printable(
            f"Filing under the {order.source} entry: "
            f"{patient.patient_name or '(no name)'} ({patient.patient_id}), "
            f"accession {context.accession_number or '(none)'}, "
            f"study {context.study_instance_uid or '(new)'}"
        )
    )
    for note in notes:
        tell(f"note: {note}")
    return context


def printable(text: str) -> str:
    """``text`` safe for a terminal: a peer's control characters are not sent
    to it raw (they could move the cursor, colour or hide text)."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
