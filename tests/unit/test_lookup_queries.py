"""Search terms and the C-FIND identifiers made of them.

Worklist keys of the scheduled step belong inside the Scheduled Procedure Step
Sequence (PS3.4 K.6.1.2.2); a study search is at STUDY level with Modalities in
Study as its modality filter (PS3.4 C.6.2.1.2). Terms that cannot be sent as they
are typed are refused before any association is opened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from pacsbridge.errors import QueryError
from pacsbridge.lookup.queries import (
    LookupQuery,
    date_filter,
    study_identifier,
    worklist_identifier,
)

TODAY = dt.date(2026, 3, 12)
QUERY = LookupQuery(
    patient_name="DOE*",
    patient_id="PID-1",
    accession_number="ACC0001",
    modality="XC",
    dates="20260301-20260312",
)
# Keys sent empty: asked for, not matched on (PS3.4 C.2.2.1.3).
WORKLIST_RETURN_KEYS = (
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "RequestedProcedureID",
    "RequestedProcedureDescription",
    "ReferringPhysicianName",
)
STEP_RETURN_KEYS = (
    "ScheduledProcedureStepID",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepStartTime",
)
STUDY_RETURN_KEYS = (
    "StudyInstanceUID",
    "StudyID",
    "StudyTime",
    "StudyDescription",
    "PatientBirthDate",
    "PatientSex",
    "ReferringPhysicianName",
)


def encoded(ds: Dataset) -> bytes:
    """The identifier as it goes on the wire (Explicit VR Little Endian)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    return fp.getvalue()


# The worklist identifier


def test_worklist_modality_and_date_are_inside_the_scheduled_step_only() -> None:
    ds = worklist_identifier(QUERY)

    (step,) = ds.ScheduledProcedureStepSequence
    assert step.Modality == "XC"
    assert step.ScheduledProcedureStepStartDate == "20260301-20260312"
    assert "Modality" not in ds
    assert "ScheduledProcedureStepStartDate" not in ds
    assert "ScheduledProcedureStepStartTime" not in ds


def test_worklist_identifier_matches_the_patient_and_asks_for_the_order() -> None:
    ds = worklist_identifier(QUERY)

    assert (ds.PatientName, ds.PatientID, ds.AccessionNumber) == (
        "DOE*",
        "PID-1",
        "ACC0001",
    )
    for keyword in WORKLIST_RETURN_KEYS:
        assert keyword in ds and ds[keyword].is_empty, keyword
    (step,) = ds.ScheduledProcedureStepSequence
    for keyword in STEP_RETURN_KEYS:
        assert keyword in step and step[keyword].is_empty, keyword


def test_worklist_code_sequences_ask_for_every_code_with_one_empty_item() -> None:
    ds = worklist_identifier(QUERY)

    (requested,) = ds.RequestedProcedureCodeSequence
    (protocol,) = ds.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence
    for item in (requested, protocol):
        assert [e.keyword for e in item] == [
            "CodeValue",
            "CodingSchemeDesignator",
            "CodeMeaning",
        ]
        assert all(e.is_empty for e in item)


def test_empty_query_sends_universal_matching_for_the_step() -> None:
    (step,) = worklist_identifier(LookupQuery()).ScheduledProcedureStepSequence

    assert step.Modality == ""
    assert step.ScheduledProcedureStepStartDate == ""


# The study identifier


def test_study_identifier_is_at_study_level_with_modalities_in_study() -> None:
    ds = study_identifier(QUERY)

    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.ModalitiesInStudy == "XC"
    assert "Modality" not in ds
    assert "ScheduledProcedureStepSequence" not in ds
    assert ds.StudyDate == "20260301-20260312"
    assert (ds.PatientName, ds.PatientID, ds.AccessionNumber) == (
        "DOE*",
        "PID-1",
        "ACC0001",
    )
    for keyword in STUDY_RETURN_KEYS:
        assert keyword in ds and ds[keyword].is_empty, keyword


def test_study_identifier_can_ask_for_one_study_by_its_uid() -> None:
    ds = study_identifier(LookupQuery(study_instance_uid="1.2.840.99.1"))

    assert ds.StudyInstanceUID == "1.2.840.99.1"
    assert ds.StudyDate == ""


# Character set


@pytest.mark.parametrize("identifier", [worklist_identifier, study_identifier])
def test_query_asks_in_utf8_and_sends_the_name_in_utf8(
    identifier: Callable[[LookupQuery], Dataset],
) -> None:
    ds = identifier(LookupQuery(patient_name="Müller*"))

    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert "Müller*".encode() in encoded(ds)


# Dates


@pytest.mark.parametrize(
    "dates",
    ["20260312", "20260301-20260312", "20260301-", "-20260312", "20260312-20260312"],
)
def test_a_day_a_range_and_open_ranges_are_accepted(dates: str) -> None:
    assert LookupQuery(dates=dates).dates == dates


@pytest.mark.parametrize(
    ("dates", "problem"),
    [
        ("2026031", "--date is YYYYMMDD"),
        ("2026031-20260312", "--date is YYYYMMDD"),
        ("20260230", "20260230 is not a real date"),
        ("20261301-", "20261301 is not a real date"),
        ("20260312-20260301", "the range ends before it begins"),
        ("yesterday", "--date is YYYYMMDD"),
        ("2026-03-12", "--date is YYYYMMDD"),
        ("today", "--date is YYYYMMDD"),  # understood by date_filter only
        ("-", "--date is YYYYMMDD"),
        ("20260301--20260312", "--date is YYYYMMDD"),
    ],
)
def test_malformed_dates_are_query_errors(dates: str, problem: str) -> None:
    with pytest.raises(QueryError, match=problem):
        LookupQuery(dates=dates)


@pytest.mark.parametrize("typed", ["today", "TODAY", " Today "])
def test_today_is_the_day_of_the_search(typed: str) -> None:
    assert date_filter(typed, 7, TODAY) == "20260312"


def test_typed_dates_win_over_the_configured_range() -> None:
    assert date_filter("20250101-20250131", 7, TODAY) == "20250101-20250131"


@pytest.mark.parametrize(
    ("range_days", "dates"),
    [(0, ""), (1, "20260312-20260312"), (7, "20260306-20260312")],
)
def test_configured_range_counts_back_from_today(range_days: int, dates: str) -> None:
    assert date_filter(None, range_days, TODAY) == dates
    assert date_filter("", range_days, TODAY) == dates


def test_configured_range_crosses_a_month_and_a_leap_day() -> None:
    assert date_filter(None, 3, dt.date(2024, 3, 1)) == "20240228-20240301"


# Wildcards, control characters, backslashes


@pytest.mark.parametrize("field", ["patient_id", "accession_number"])
@pytest.mark.parametrize("wildcard", ["*", "?"])
def test_wildcards_are_refused_where_matching_is_exact(
    field: str, wildcard: str
) -> None:
    option = {"patient_id": "--patient-id", "accession_number": "--accession"}[field]

    with pytest.raises(QueryError, match=f"{option} is matched exactly"):
        LookupQuery(**{field: f"A{wildcard}1"})


@pytest.mark.parametrize("name", ["DOE*", "D?E^JANE", "*", "Doe^J*"])
def test_wildcards_are_allowed_in_the_name(name: str) -> None:
    assert worklist_identifier(LookupQuery(patient_name=name)).PatientName == name


@pytest.mark.parametrize(
    ("field", "option"),
    [
        ("patient_name", "--name"),
        ("patient_id", "--patient-id"),
        ("accession_number", "--accession"),
    ],
)
@pytest.mark.parametrize("bad", ["\\", "\n", "\t", "\x00", "\x1b", "\x7f"])
def test_backslashes_and_control_characters_are_refused(
    field: str, option: str, bad: str
) -> None:
    with pytest.raises(QueryError, match=f"{option} holds a backslash or a control"):
        LookupQuery(**{field: f"AB{bad}1"})


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"patient_id": "1" * 65}, "--patient-id is longer than 64"),
        ({"accession_number": "1" * 17}, "--accession is longer than 16"),
        ({"modality": "xc"}, "--modality is 1 to 16 upper-case"),
        ({"modality": "X*"}, "--modality is 1 to 16 upper-case"),
        ({"study_instance_uid": "1.02.3"}, "not a valid UID"),
        ({"patient_name": "Doe\udcff"}, "--name is not valid text"),
    ],
)
def test_other_malformed_terms_are_refused(
    values: dict[str, str], problem: str
) -> None:
    with pytest.raises(QueryError, match=problem):
        LookupQuery(**values)
