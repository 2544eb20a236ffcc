"""Patient and CaptureContext: who and what the pictures of a job belong to.

Values are checked against the DICOM value representations they will be written as
(PS3.5 6.2), so a bad value is refused before any object is built. Error messages name
the attribute, never its value: these are patient data.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pacsbridge.errors import ContextError

_SEXES = ("M", "F", "O")
_LATERALITIES = ("R", "L")
_CS = re.compile(r"^[A-Z0-9 _]*$")
_DATE = re.compile(r"^[0-9]{8}$")
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
    if "\\" in value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ContextError(f"{keyword} holds a backslash or a control character")


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

    def __post_init__(self) -> None:
        _check_text("Accession Number", self.accession_number, 16)
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
