"""The capture context: refused when incomplete, and never quoted in a message."""

from __future__ import annotations

from typing import Any

import pytest

from pacsbridge.context import CaptureContext, Patient
from pacsbridge.errors import ContextError

# Values that must never appear in an error message: they are patient data.
NAME, PATIENT_ID, BIRTH_DATE = "Quixote^Dulcinea", "ZX-998877", "19801345"


def test_patient_id_is_required() -> None:
    with pytest.raises(ContextError, match="Patient ID is missing"):
        Patient("")


def test_blank_patient_id_is_missing_too() -> None:
    with pytest.raises(ContextError, match="Patient ID is missing"):
        Patient("   ", NAME)


def test_valid_patient_and_context_are_kept_as_given() -> None:
    patient = Patient(PATIENT_ID, NAME, "19800229", "F")

    context = CaptureContext(patient, accession_number="A1", laterality="L")

    assert context.patient.birth_date == "19800229"
    assert context.modality == "XC"


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"birth_date": BIRTH_DATE}, "Patient Birth Date is not a valid date"),
        ({"birth_date": "1980-01-01"}, "Patient Birth Date is not a valid date"),
        ({"birth_date": "1960131"}, "Patient Birth Date is not a valid date"),
        ({"birth_date": "196011"}, "Patient Birth Date is not a valid date"),
        ({"birth_date": "29991231"}, "Patient Birth Date is in the future"),
        ({"patient_name": NAME + "\x7f"}, "Patient Name holds .* control character"),
        ({"sex": "X"}, "Patient Sex is M, F or O"),
        ({"patient_id": PATIENT_ID * 8}, "Patient ID is longer than 64"),
        ({"patient_id": PATIENT_ID + "\\2"}, "Patient ID holds a backslash"),
        ({"patient_name": NAME + "^A^B^C^D"}, "more than five name components"),
        ({"patient_name": NAME + "\n"}, "Patient Name holds .* control character"),
        ({"patient_name": "=".join([NAME] * 4)}, "more than three component"),
    ],
)
def test_bad_patient_value_is_named_but_not_quoted(
    values: dict[str, str], problem: str
) -> None:
    given = {"patient_id": PATIENT_ID, "patient_name": NAME, **values}

    with pytest.raises(ContextError, match=problem) as caught:
        Patient(**given)

    message = str(caught.value)
    assert [v for v in (NAME, "Quixote", PATIENT_ID, BIRTH_DATE) if v in message] == []


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"modality": "xc"}, "Modality is 1 to 16 upper-case"),
        ({"modality": ""}, "Modality is 1 to 16 upper-case"),
        ({"laterality": "B"}, "Laterality is R or L"),
        ({"body_part": "left foot"}, "Body Part Examined"),
        ({"accession_number": "A" * 17}, "Accession Number is longer than 16"),
        ({"study_description": "x" * 65}, "Study Description is longer than 64"),
        ({"referring_physician": "Dr\\Who"}, "Referring Physician's Name holds"),
        ({"operator": "A^B^C^D^E^F"}, "Operators' Name has more than five"),
    ],
)
def test_bad_context_value_is_named_but_not_quoted(
    values: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ContextError, match=problem) as caught:
        CaptureContext(Patient(PATIENT_ID, NAME), **values)

    message = str(caught.value)
    assert PATIENT_ID not in message and "Quixote" not in message
    assert [v for v in values.values() if v and v in message] == []


def test_bad_study_instance_uid_is_refused() -> None:
    with pytest.raises(ContextError, match="Study Instance UID is not a valid UID"):
        CaptureContext(Patient(PATIENT_ID, NAME), study_instance_uid="1.2.abc")
