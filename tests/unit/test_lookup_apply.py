"""A chosen order applied to a job: what the objects inherit, and what is refused.

IHE RAD TF-2x Appendix A: the patient, the Study Instance UID, the Accession
Number, the Referring Physician, the Requested Procedure and the scheduled step
of a worklist entry reach every image; typed values win field by field, and
each replacement is reported. Values an object may not hold are refused naming
the attribute, never quoting it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydicom import config, dcmread
from pydicom.dataset import Dataset

from pacsbridge.config import Settings
from pacsbridge.context import CaptureContext, Code, Order
from pacsbridge.demo import sample_photos
from pacsbridge.dicom.objects import JobObjects
from pacsbridge.errors import ContextError
from pacsbridge.lookup.apply import TypedContext, context_from_order
from tests.peers import dciodvfy, require_or_skip

JAPANESE = "Yamada^Tarou=山田^太郎=やまだ^たろう"  # PS3.5 H.3.1
WOUND = Code("WND01", "99PB", "Wound photography")
HEEL = Code("PROTOCOL-HEEL-0001-LONG", "99PB", "Heel, three views", "2026")

ENTRY = Order(
    source="worklist",
    patient_id="PID-4711",
    patient_name="Doe^Jane",
    birth_date="19800229",
    sex="F",
    accession_number="ACC0001",
    study_instance_uid="1.2.840.99.4711",
    referring_physician="House^Gregory",
    modality="XC",
    scheduled_date="20260312",
    scheduled_time="0930",
    requested_procedure_id="RP-17",
    requested_procedure_description="Wound photos",
    requested_procedure_codes=(WOUND,),
    scheduled_procedure_step_id="SPS-17-1",
    scheduled_procedure_step_description="Left heel",
    scheduled_protocol_codes=(HEEL,),
)
STUDY = Order(
    source="study",
    patient_id="PID-4711",
    patient_name="Doe^Jane",
    birth_date="19800229",
    sex="F",
    accession_number="ACC0002",
    study_instance_uid="1.2.840.99.4712",
    referring_physician="House^Gregory",
    modality="CT\\MR",
    study_date="20250101",
    study_time="101500",
    study_id="S-99",
    study_description="Dermatology follow-up",
)


@pytest.fixture(autouse=True)
def strict_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value we set must be valid for its VR (DESIGN: strict when writing)."""
    monkeypatch.setattr(config.settings, "writing_validation_mode", config.RAISE)


def applied(order: Order, **typed: str) -> tuple[CaptureContext, list[str]]:
    return context_from_order(order, TypedContext(**typed))


# What a worklist entry gives the job


def test_worklist_entry_gives_patient_study_and_request_to_the_job() -> None:
    context, notes = applied(ENTRY)

    patient = context.patient
    assert (patient.patient_id, patient.patient_name) == ("PID-4711", "Doe^Jane")
    assert (patient.birth_date, patient.sex) == ("19800229", "F")
    assert context.study_instance_uid == "1.2.840.99.4711"
    assert context.accession_number == "ACC0001"
    assert context.referring_physician == "House^Gregory"
    assert context.study_id == "RP-17"  # the Requested Procedure ID
    assert context.study_description == "Wound photos"
    assert context.order == ENTRY
    assert notes == []


def test_worklist_entry_gives_the_steps_modality() -> None:
    context, _ = applied(dataclasses.replace(ENTRY, modality="OT"))

    assert context.modality == "OT"


def test_worklist_entry_without_a_modality_is_photographed_as_xc() -> None:
    context, _ = applied(dataclasses.replace(ENTRY, modality=""))

    assert context.modality == "XC"


# Typed values over the entry


def typeable_values(context: CaptureContext) -> dict[str, str]:
    """The context's values that an option can type, by TypedContext field."""
    patient = context.patient
    return {
        "patient_id": patient.patient_id,
        "patient_name": patient.patient_name,
        "birth_date": patient.birth_date,
        "sex": patient.sex,
        "accession_number": context.accession_number,
        "study_instance_uid": context.study_instance_uid,
        "study_description": context.study_description,
        "modality": context.modality,
    }


@pytest.mark.parametrize(
    ("field", "value", "option", "attribute"),
    [
        ("patient_name", "Roe^Richard", "--patient-name", "Patient Name"),
        ("birth_date", "19790101", "--birth-date", "Patient Birth Date"),
        ("sex", "M", "--sex", "Patient Sex"),
        ("accession_number", "ACC0009", "--accession", "Accession Number"),
        ("study_description", "Other", "--study-description", "Study Description"),
        ("modality", "OT", "--modality", "Modality"),
    ],
)
def test_each_typed_value_replaces_only_the_entrys_own_and_says_so(
    field: str, value: str, option: str, attribute: str
) -> None:
    expected = typeable_values(applied(ENTRY)[0]) | {field: value}

    context, notes = applied(ENTRY, **{field: value})

    assert typeable_values(context) == expected
    assert notes == [f"{option} replaces the worklist entry's {attribute}"]


@pytest.mark.parametrize(
    ("field", "value", "option"),
    [
        ("patient_id", "PID-0815", "--patient-id"),
        ("study_instance_uid", "1.2.840.99.1", "--study-uid"),
    ],
)
def test_another_patient_id_or_study_than_the_entrys_is_refused(
    field: str, value: str, option: str
) -> None:
    with pytest.raises(ContextError, match=f"{option} differs from the worklist"):
        applied(ENTRY, **{field: value})


def test_typed_value_equal_to_the_entrys_is_no_replacement() -> None:
    context, notes = applied(
        ENTRY, patient_id="PID-4711", sex="F", modality="XC", accession_number="ACC0001"
    )

    assert notes == []
    assert context.patient.patient_id == "PID-4711"


def test_several_typed_values_give_one_note_each() -> None:
    _, notes = applied(ENTRY, patient_name="Roe^Richard", sex="M", body_part="FOOT")

    assert notes == [
        "--patient-name replaces the worklist entry's Patient Name",
        "--sex replaces the worklist entry's Patient Sex",
    ]


def test_typed_values_the_entry_lacks_are_taken_without_a_note() -> None:
    entry = dataclasses.replace(ENTRY, birth_date="", sex="")

    context, notes = applied(
        entry, birth_date="19800229", sex="F", series_description="Heel", laterality="L"
    )

    assert (context.patient.birth_date, context.patient.sex) == ("19800229", "F")
    assert (context.series_description, context.laterality) == ("Heel", "L")
    assert notes == []


def test_a_typed_value_replaces_a_wrong_one_of_the_entry() -> None:
    context, notes = applied(dataclasses.replace(ENTRY, sex="U"), sex="O")

    assert context.patient.sex == "O"
    assert notes == ["--sex replaces the worklist entry's Patient Sex"]


# An existing study


def test_existing_study_keeps_its_date_time_and_study_id() -> None:
    context, notes = applied(STUDY)

    assert (context.study_date, context.study_time) == ("20250101", "101500")
    assert context.study_id == "S-99"
    assert context.study_description == "Dermatology follow-up"
    assert context.study_instance_uid == "1.2.840.99.4712"
    assert notes == []


@pytest.mark.parametrize("modalities", ["CT\\MR", "OT"])
def test_modalities_in_study_do_not_become_the_series_modality(
    modalities: str,
) -> None:
    study = dataclasses.replace(STUDY, modality=modalities)

    assert applied(study)[0].modality == "XC"  # our default, not the study's
    assert applied(study, modality="SM") == (
        dataclasses.replace(applied(study)[0], modality="SM"),
        [],  # a typed modality replaces nothing of the study's
    )


# Values of the entry that no object may hold


PATIENT_DATA = ("PID-4711", "Doe^Jane", "Doe", "Jane")


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"birth_date": "1980-02-29"}, "Patient Birth Date is not a valid date"),
        ({"birth_date": "19800230"}, "Patient Birth Date is not a valid date"),
        ({"birth_date": "29990101"}, "Patient Birth Date is in the future"),
        ({"sex": "U"}, "Patient Sex is M, F or O"),
        ({"sex": "female"}, "Patient Sex is M, F or O"),
        ({"patient_id": ""}, "Patient ID is missing"),
        ({"study_instance_uid": "1.2.840.099"}, "Study Instance UID is not a valid"),
        ({"accession_number": "ACC-0123456789-XYZ"}, "Accession Number is longer"),
        (
            {"requested_procedure_description": "Wound photos " * 5},
            "Requested Procedure Description is longer than 64",
        ),
        ({"requested_procedure_id": "RP-" * 6}, "Requested Procedure ID is longer"),
        ({"referring_physician": "House\\Wilson"}, "Referring Physician's Name holds"),
    ],
)
def test_entry_value_no_object_may_hold_is_refused_naming_it_not_quoting_it(
    values: dict[str, str], problem: str
) -> None:
    entry = dataclasses.replace(ENTRY, **values)

    with pytest.raises(ContextError, match=problem) as caught:
        applied(entry)

    message = str(caught.value)
    assert message.startswith("with the worklist entry's values: ")
    for value in (*values.values(), *PATIENT_DATA):
        if value:
            assert value not in message


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"study_date": "2025-01-01"}, "Study Date is not a valid date"),
        ({"study_time": "25:15"}, "Study Time is not a valid time"),
        ({"study_id": "S-0123456789-WXYZ"}, "Study ID is longer than 16"),
        ({"sex": "W"}, "Patient Sex is M, F or O"),
    ],
)
def test_study_value_no_object_may_hold_says_it_came_from_the_study(
    values: dict[str, str], problem: str
) -> None:
    with pytest.raises(ContextError, match=problem) as caught:
        applied(dataclasses.replace(STUDY, **values))

    assert str(caught.value).startswith("with the study entry's values: ")
    for value in values.values():
        assert value not in str(caught.value)


def test_wrong_typed_value_is_not_blamed_on_the_entry() -> None:
    with pytest.raises(
        ContextError, match="Patient Birth Date is not a valid"
    ) as caught:
        applied(ENTRY, birth_date="1960131")

    assert "entry" not in str(caught.value)


@pytest.mark.parametrize(
    "field", ["patient_name", "referring_physician", "requested_procedure_description"]
)
def test_text_holding_a_replacement_character_is_refused(field: str) -> None:
    entry = dataclasses.replace(ENTRY, **{field: "M\ufffdller^J\ufffdrg"})
    words = field.replace("_", " ")

    with pytest.raises(ContextError, match=f"entry's {words} could not be decoded"):
        applied(entry)


def test_incomplete_codes_are_left_out_with_a_note() -> None:
    entry = dataclasses.replace(
        ENTRY,
        requested_procedure_codes=(Code("WND02", "", "Wound"), WOUND),
        scheduled_protocol_codes=(Code("", "99PB", "Heel"),),
    )

    context, notes = applied(entry)

    assert context.order is not None
    assert context.order.requested_procedure_codes == (WOUND,)
    assert context.order.scheduled_protocol_codes == ()
    assert notes == [
        "the Requested Procedure Code item 1 is left out: it lacks a code value, "
        "a coding scheme or a meaning",
        "the Scheduled Protocol Code item 1 is left out: it lacks a code value, "
        "a coding scheme or a meaning",
    ]


def test_code_with_an_overlong_part_is_left_out_with_a_note() -> None:
    entry = dataclasses.replace(
        ENTRY, requested_procedure_codes=(Code("WND", "99PB", "W" * 65), WOUND)
    )

    context, notes = applied(entry)

    assert context.order is not None
    assert context.order.requested_procedure_codes == (WOUND,)
    assert notes == [
        "the Requested Procedure Code item 1 is left out: a part of it is too long "
        "or holds a control character"
    ]


# The objects of a job filed under the entry


def written(tmp_path: Path, context: CaptureContext) -> Path:
    job = JobObjects.plan(sample_photos()[:1], context, Settings())
    ((obj, built),) = list(job)
    path = tmp_path / f"{obj.sop_instance_uid}.dcm"
    built.write(path)
    return path


def code_values(sequence: list[Dataset]) -> list[tuple[str, str, str]]:
    return [
        (
            item.get("CodeValue") or item.get("LongCodeValue"),
            item.CodingSchemeDesignator,
            item.CodeMeaning,
        )
        for item in sequence
    ]


def test_object_carries_the_request_of_the_worklist_entry(tmp_path: Path) -> None:
    context, _ = applied(ENTRY)

    ds = dcmread(written(tmp_path, context))

    (request,) = ds.RequestAttributesSequence
    assert request.RequestedProcedureID == "RP-17"
    assert request.ScheduledProcedureStepID == "SPS-17-1"
    assert request.ScheduledProcedureStepDescription == "Left heel"
    assert request.RequestedProcedureDescription == "Wound photos"
    assert request.AccessionNumber == "ACC0001"
    assert request.StudyInstanceUID == "1.2.840.99.4711"
    wound = [("WND01", "99PB", "Wound photography")]
    heel = [("PROTOCOL-HEEL-0001-LONG", "99PB", "Heel, three views")]
    assert code_values(request.RequestedProcedureCodeSequence) == wound
    assert code_values(request.ScheduledProtocolCodeSequence) == heel
    assert code_values(ds.ProcedureCodeSequence) == wound
    assert code_values(ds.PerformedProtocolCodeSequence) == heel
    # PS3.3 8.8: a code value past 16 characters is a Long Code Value.
    assert "CodeValue" not in ds.PerformedProtocolCodeSequence[0]
    assert ds.PerformedProtocolCodeSequence[0].CodingSchemeVersion == "2026"


def test_object_carries_the_patient_and_study_of_the_worklist_entry(
    tmp_path: Path,
) -> None:
    context, _ = applied(ENTRY)

    ds = dcmread(written(tmp_path, context))

    assert (ds.PatientID, str(ds.PatientName)) == ("PID-4711", "Doe^Jane")
    assert (ds.PatientBirthDate, ds.PatientSex) == ("19800229", "F")
    assert ds.StudyInstanceUID == "1.2.840.99.4711"
    assert ds.AccessionNumber == "ACC0001"
    assert ds.ReferringPhysicianName == "House^Gregory"
    assert ds.StudyID == "RP-17"
    assert ds.StudyDescription == "Wound photos"
    assert ds.Modality == "XC"
    assert ds.StudyDate != ""  # a scheduled study is begun by its images
    assert "SpecificCharacterSet" not in ds  # all ASCII


def test_object_of_an_existing_study_has_its_date_and_no_request(
    tmp_path: Path,
) -> None:
    context, _ = applied(STUDY)

    ds = dcmread(written(tmp_path, context))

    assert (ds.StudyDate, ds.StudyTime, ds.StudyID) == ("20250101", "101500", "S-99")
    assert ds.StudyInstanceUID == "1.2.840.99.4712"
    assert ds.Modality == "XC"
    for keyword in (
        "RequestAttributesSequence",
        "ProcedureCodeSequence",
        "PerformedProtocolCodeSequence",
    ):
        assert keyword not in ds


def test_japanese_name_keeps_its_three_groups_in_utf8(tmp_path: Path) -> None:
    context, _ = applied(dataclasses.replace(ENTRY, patient_name=JAPANESE))

    ds = dcmread(written(tmp_path, context))

    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == JAPANESE
    assert ds.PatientName.alphabetic == "Yamada^Tarou"
    assert ds.PatientName.ideographic == "山田^太郎"
    assert ds.PatientName.phonetic == "やまだ^たろう"


def test_object_of_a_worklist_entry_passes_dciodvfy(tmp_path: Path) -> None:
    require_or_skip(["dciodvfy"])
    context, _ = applied(dataclasses.replace(ENTRY, patient_name=JAPANESE))

    assert dciodvfy(written(tmp_path, context)) == []


def test_entry_without_procedure_ids_still_makes_a_valid_object(
    tmp_path: Path,
) -> None:
    require_or_skip(["dciodvfy"])
    entry = dataclasses.replace(
        ENTRY, requested_procedure_id="", scheduled_procedure_step_id=""
    )
    context, _ = applied(entry)

    assert dciodvfy(written(tmp_path, context)) == []


@pytest.mark.parametrize(
    ("values", "remedy"),
    [
        ({"sex": "W"}, "type --sex to replace it"),
        ({"birth_date": "19601301"}, "type --birth-date to replace it"),
        (
            {"requested_procedure_description": "Wound photos " * 5},
            "it must be corrected where the entry is kept",
        ),
        ({"referring_physician": "House\\Wilson"}, "where the entry is kept"),
    ],
)
def test_a_refused_entry_value_says_how_it_can_be_put_right(
    values: dict[str, str], remedy: str
) -> None:
    with pytest.raises(ContextError, match=remedy):
        applied(dataclasses.replace(ENTRY, **values))


def test_request_item_follows_a_typed_accession(tmp_path: Path) -> None:
    context, _ = applied(ENTRY, accession_number="TYPED-1")

    ds = dcmread(written(tmp_path, context))

    [request] = ds.RequestAttributesSequence
    assert request.AccessionNumber == "TYPED-1"
    assert request.StudyInstanceUID == ENTRY.study_instance_uid
    assert request.RequestedProcedureID == ENTRY.requested_procedure_id


@pytest.mark.parametrize("name", ["^", "Yamada^Tarou=^=^", "=^"])
def test_a_name_group_of_separators_alone_is_refused(name: str) -> None:
    with pytest.raises(ContextError, match="component group without a name in it"):
        applied(dataclasses.replace(ENTRY, patient_name=name))


def test_entry_with_a_right_to_left_override_in_the_name_is_refused() -> None:
    with pytest.raises(ContextError, match=r"Patient Name holds .* control character"):
        applied(dataclasses.replace(ENTRY, patient_name="Doe^\u202eenaJ"))
