"""Patient, Order and CaptureContext: who and what the pictures of a job belong to.

Values are checked against the DICOM value representations they will be written as
(PS3.5 6.2), so a bad value is refused before any object is built. Error messages name
the attribute, never its value: these are patient data.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from pacsbridge.errors import ContextError

_SEXES = ("M", "F", "O")
_LATERALITIES = ("R", "L")
_CS = re.compile(r"^[A-Z0-9 _]*$")
_DATE = re.compile(r"^[0-9]{8}$")
# PS3.5 6.2 TM: HH, HHMM, HHMMSS or HHMMSS.F to six fraction digits.
_TIME = re.compile(r"^([01][0-9]|2[0-3])([0-5][0-9]([0-5][0-9](\.[0-9]{1,6})?)?)?$")
# PS3.5 9.1: dot-separated numbers without leading zeros, at most 64 characters.
_UID = re.compile(r"^(?=.{1,64}$)(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


# TODO: lengths are counted in characters as PS3.5 says; dciodvfy and some
# archives count bytes, so long non-Latin values can still be refused there.
def _check_text(keyword: str, value: str, max_len: int) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from the command line
        raise ContextError(f"{keyword} is not valid text (not UTF-8)") from None
    if len(value) > max_len:
        raise ContextError(f"{keyword} is longer than {max_len} characters")
    if "\\" in value or any(_is_control(ch) for ch in value):
        raise ContextError(f"{keyword} holds a backslash or a control character")


def _is_control(ch: str) -> bool:
    # C0 and C1 controls, and the format characters that reorder or hide text
    # on screen (a right-to-left override makes a name read as another).
    return unicodedata.category(ch) in ("Cc", "Cf")


def _check_date(keyword: str, value: str) -> None:
    # strptime alone takes "1960131" for 31 January: DA is exactly eight digits.
    try:
        if not _DATE.match(value):
            raise ValueError
        dt.datetime.strptime(value, "%Y%m%d")
    except ValueError:
        raise ContextError(f"{keyword} is not a valid date in YYYYMMDD form") from None


def _check_person_name(keyword: str, value: str) -> None:
    # PS3.5 6.2 PN: up to three component groups of 64 characters, five components.
    for group in value.split("="):
        _check_text(keyword, group, 64)
        if group.count("^") > 4:
            raise ContextError(f"{keyword} has more than five name components")
    if value.count("=") > 2:
        raise ContextError(f"{keyword} has more than three component groups")


def _check_time(keyword: str, value: str) -> None:
    if not _TIME.match(value):
        raise ContextError(f"{keyword} is not a valid time in HHMMSS form")


@dataclass(frozen=True)
class Code:
    """One coded entry (PS3.3 8.8): a value in a coding scheme, and its meaning."""

    value: str
    scheme: str
    meaning: str
    scheme_version: str = ""

    def problem(self) -> str | None:
        """Why this code cannot be written as it is, or None when it can."""
        if not (self.value and self.scheme and self.meaning):
            return "it lacks a code value, a coding scheme or a meaning"
        for text, limit in ((self.scheme, 16), (self.meaning, 64), (self.value, 64)):
            try:
                _check_text("code", text, limit)
            except ContextError:
                return "a part of it is too long or holds a control character"
        return None


@dataclass(frozen=True)
class Order:
    """A worklist entry or an existing study, as a lookup provider described it.

    Values are kept as the provider sent them (trimmed); they are checked only
    when the order is applied to a job, so a list of answers never fails on one
    odd entry. ``source`` is "worklist" or "study".
    """

    source: str
    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    accession_number: str = ""
    study_instance_uid: str = ""
    referring_physician: str = ""
    modality: str = ""
    scheduled_date: str = ""
    scheduled_time: str = ""
    requested_procedure_id: str = ""
    requested_procedure_description: str = ""
    requested_procedure_codes: tuple[Code, ...] = ()
    scheduled_procedure_step_id: str = ""
    scheduled_procedure_step_description: str = ""
    scheduled_protocol_codes: tuple[Code, ...] = ()
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    study_description: str = ""

    def check(self) -> None:
        """Refuse, naming the attribute, an order value no object may hold.

        The patient and the study attributes are checked again as parts of the
        CaptureContext; these are the ones only the order brings.
        """
        _check_person_name("Referring Physician's Name", self.referring_physician)
        for keyword, value, max_len in (
            ("Requested Procedure ID", self.requested_procedure_id, 16),
            ("Requested Procedure Description", self.requested_procedure_description,
             64),
            ("Scheduled Procedure Step ID", self.scheduled_procedure_step_id, 16),
            ("Scheduled Procedure Step Description",
             self.scheduled_procedure_step_description, 64),
            ("Study ID", self.study_id, 16),
        ):  # fmt: skip
            _check_text(keyword, value, max_len)

    @property
    def description(self) -> str:
        """What the procedure is, in words: the one line a person chooses by."""
        return (
            self.requested_procedure_description
            or self.scheduled_procedure_step_description
            or self.study_description
        )


@dataclass(frozen=True)
class Patient:
    """The patient every object of a job is filed under.

    ``patient_name`` is in DICOM form, ``Family^Given^Middle^Prefix^Suffix``.
    """

    patient_id: str
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""

    def __post_init__(self) -> None:
        if not self.patient_id.strip():
            raise ContextError("Patient ID is missing: nothing is sent without it")
        _check_text("Patient ID", self.patient_id, 64)
        _check_person_name("Patient Name", self.patient_name)
        if self.birth_date:
            _check_date("Patient Birth Date", self.birth_date)
            if self.birth_date > dt.date.today().strftime("%Y%m%d"):
                raise ContextError("Patient Birth Date is in the future")
        if self.sex not in ("", *_SEXES):
            raise ContextError("Patient Sex is M, F or O")


@dataclass(frozen=True)
class CaptureContext:
    """The patient, the order and the descriptions shared by every object of a job."""

    patient: Patient
    accession_number: str = ""
    study_instance_uid: str = ""
    study_description: str = ""
    series_description: str = ""
    referring_physician: str = ""
    modality: str = "XC"
    body_part: str = ""
    laterality: str = ""
    operator: str = ""
    study_id: str = ""
    study_date: str = ""
    study_time: str = ""
    order: Order | None = None  # the worklist entry or study the job belongs to

    def __post_init__(self) -> None:
        _check_text("Accession Number", self.accession_number, 16)
        if self.study_date:
            _check_date("Study Date", self.study_date)
        if self.study_time:
            _check_time("Study Time", self.study_time)
        _check_text("Study Description", self.study_description, 64)
        _check_text("Series Description", self.series_description, 64)
        _check_text("Study ID", self.study_id, 16)
        _check_person_name("Referring Physician's Name", self.referring_physician)
        _check_person_name("Operators' Name", self.operator)
        if self.study_instance_uid and not _UID.match(self.study_instance_uid):
            raise ContextError("Study Instance UID is not a valid UID")
        if not self.modality or len(self.modality) > 16 or not _CS.match(self.modality):
            raise ContextError("Modality is 1 to 16 upper-case letters or digits")
        if len(self.body_part) > 16 or not _CS.match(self.body_part):
            raise ContextError(
                "Body Part Examined is up to 16 upper-case letters, digits or _"
            )
        if self.laterality not in ("", *_LATERALITIES):
            raise ContextError("Laterality is R or L")
