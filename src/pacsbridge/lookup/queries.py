"""What a person searches by, and the C-FIND identifiers that ask for it.

Modality Worklist (PS3.4 K.6.1.2): the scheduled-step keys go inside the
Scheduled Procedure Step Sequence, never at the top level, where servers ignore
them and answer with other days' patients. Study Root at STUDY level (PS3.4
C.6.2.1): Modalities in Study is the modality filter; Modality itself is not a
study-level key and some archives refuse it there.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pacsbridge.errors import QueryError

# We ask for UTF-8 answers: some servers (dcmqrscp) convert their answers to the
# query's character set and fail on names that ASCII cannot hold.
QUERY_CHARSET = "ISO_IR 192"

_DAY = r"[0-9]{8}"
_DATES = re.compile(rf"^(?:{_DAY}|{_DAY}-|-{_DAY}|{_DAY}-{_DAY})$")
_MODALITY = re.compile(r"^[A-Z0-9_]{1,16}$")
_UID = re.compile(r"^(?=.{1,64}$)(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


@dataclass(frozen=True)
class LookupQuery:
    """Search terms; empty ones match everything.

    ``patient_name`` may hold the wildcards ``*`` and ``?`` (PS3.4 C.2.2.2.4);
    the IDs and the accession match exactly. ``dates`` is in DICOM range form:
    ``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``, or open at one end.
    """

    patient_name: str = ""
    patient_id: str = ""
    accession_number: str = ""
    modality: str = ""
    dates: str = ""
    study_instance_uid: str = ""

    def __post_init__(self) -> None:
        _check_term("--name", self.patient_name, 64 * 3 + 2)
        _check_term("--patient-id", self.patient_id, 64)
        _check_term("--accession", self.accession_number, 16)
        for option, value in (
            ("--patient-id", self.patient_id),
            ("--accession", self.accession_number),
        ):
            if "*" in value or "?" in value:
                raise QueryError(
                    f"{option} is matched exactly: wildcards (* ?) are not allowed"
                )
        if self.modality and not _MODALITY.match(self.modality):
            raise QueryError("--modality is 1 to 16 upper-case letters or digits")
        if self.dates and not _DATES.match(self.dates):
            raise QueryError("--date is YYYYMMDD, YYYYMMDD-YYYYMMDD or today")
        if self.study_instance_uid and not _UID.match(self.study_instance_uid):
            raise QueryError("the Study Instance UID is not a valid UID")
        _check_range(self.dates)


def _check_term(option: str, value: str, max_len: int) -> None:
    if len(value) > max_len:
        raise QueryError(f"{option} is longer than {max_len} characters")
    if "\\" in value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise QueryError(f"{option} holds a backslash or a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError(f"{option} is not valid text (not UTF-8)") from None


def _check_range(dates: str) -> None:
    days = [d for d in dates.split("-") if d]
    for day in days:
        try:
            dt.datetime.strptime(day, "%Y%m%d")
        except ValueError:
            raise QueryError(f"--date: {day} is not a real date") from None
    if len(days) == 2 and days[0] > days[1]:
        raise QueryError("--date: the range ends before it begins")


def typed_query(
    name: str,
    patient_id: str,
    accession: str,
    modality: str,
    date: str | None,
    range_days: int,
) -> LookupQuery:
    """The query for terms a person typed (on the command line or the page)."""
    return LookupQuery(
        patient_name=name,
        patient_id=patient_id,
        accession_number=accession,
        modality=modality.upper(),
        dates=date_filter(date, range_days, dt.date.today()),
    )


def date_filter(text: str | None, range_days: int, today: dt.date) -> str:
    """The dates to send: those typed (``today`` is understood), else the last
    ``range_days`` days up to today, else no filter (``range_days`` 0)."""
    if text:
        return today.strftime("%Y%m%d") if text.strip().lower() == "today" else text
    if range_days <= 0:
        return ""
    first = today - dt.timedelta(days=range_days - 1)
    return f"{first:%Y%m%d}-{today:%Y%m%d}"


def worklist_identifier(query: LookupQuery) -> Dataset:
    """The Modality Worklist C-FIND identifier for ``query`` (PS3.4 K.6.1.2.2)."""
    ds = Dataset()
    ds.SpecificCharacterSet = QUERY_CHARSET
    ds.AccessionNumber = query.accession_number
    ds.ReferringPhysicianName = ""
    ds.PatientName = query.patient_name
    ds.PatientID = query.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = query.study_instance_uid
    ds.RequestedProcedureID = ""
    ds.RequestedProcedureDescription = ""
    ds.RequestedProcedureCodeSequence = Sequence([_empty_code()])

    step = Dataset()
    step.Modality = query.modality
    step.ScheduledProcedureStepStartDate = query.dates
    step.ScheduledProcedureStepStartTime = ""
    step.ScheduledProcedureStepID = ""
    step.ScheduledProcedureStepDescription = ""
    step.ScheduledProtocolCodeSequence = Sequence([_empty_code()])
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


def study_identifier(query: LookupQuery) -> Dataset:
    """The Study Root C-FIND identifier at STUDY level (PS3.4 C.6.2.1.2)."""
    ds = Dataset()
    ds.SpecificCharacterSet = QUERY_CHARSET
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyDate = query.dates
    ds.StudyTime = ""
    ds.AccessionNumber = query.accession_number
    ds.ModalitiesInStudy = query.modality
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = ""
    ds.PatientName = query.patient_name
    ds.PatientID = query.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = query.study_instance_uid
    ds.StudyID = ""
    return ds


def _empty_code() -> Dataset:
    # An item whose keys are all empty matches every item and asks for its
    # values (PS3.4 C.2.2.2.6).
    code = Dataset()
    code.CodeValue = ""
    code.CodingSchemeDesignator = ""
    code.CodeMeaning = ""
    return code
