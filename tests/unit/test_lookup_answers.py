"""C-FIND answers read into Orders: tolerant of what servers really send.

Every answer here is built with pydicom, encoded without file meta in Explicit
or Implicit VR Little Endian, and read back with ``read_dataset``, as
pynetdicom hands an identifier to us: values still raw bytes, decoded only when
read.
"""

from __future__ import annotations

import io
import logging
import struct

import pytest
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from pacsbridge.context import Code, Order
from pacsbridge.lookup import answers

JAPANESE = "Yamada^Tarou=山田^太郎=やまだ^たろう"  # PS3.5 H.3.1
CHINESE = "Wang^XiaoDong=王^小东"  # PS3.5 K.2
GERMAN = "Müller^Jörg"


def encoded(ds: Dataset, implicit: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def received(data: bytes, implicit: bool) -> Dataset:
    """An identifier as pynetdicom decodes it from a C-FIND-RSP."""
    return read_dataset(io.BytesIO(data), implicit, True)


def round_trip(ds: Dataset, implicit: bool = False) -> Dataset:
    return received(encoded(ds, implicit), implicit)


def worklist_orders(ds: Dataset, default_charset: str = "ISO_IR 100") -> list[Order]:
    answers.decode_answer(ds, default_charset)
    return list(answers.worklist_orders(ds))


def the_order(ds: Dataset, default_charset: str = "ISO_IR 100") -> Order:
    (order,) = worklist_orders(ds, default_charset)
    return order


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def step(modality: str = "XC", step_id: str = "SPS1", **values: str) -> Dataset:
    item = Dataset()
    item.Modality = modality
    item.ScheduledProcedureStepStartDate = "20260312"
    item.ScheduledProcedureStepStartTime = "0930"
    item.ScheduledProcedureStepID = step_id
    item.ScheduledProcedureStepDescription = "Photo of the left heel"
    item.ScheduledProtocolCodeSequence = Sequence([code("P1", "99PB", "Heel")])
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def worklist_answer(**values: object) -> Dataset:
    ds = Dataset()
    ds.AccessionNumber = "ACC0001"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-1"
    ds.PatientBirthDate = "19800229"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = "1.2.840.99.7"
    ds.RequestedProcedureDescription = "Wound photos"
    ds.RequestedProcedureCodeSequence = Sequence([code("WND", "99PB", "Wound")])
    ds.RequestedProcedureID = "RP1"
    ds.ScheduledProcedureStepSequence = Sequence([step()])
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_complete_worklist_answer_becomes_one_order_with_every_value(
    implicit: bool,
) -> None:
    order = the_order(round_trip(worklist_answer(), implicit))

    assert order == Order(
        source="worklist",
        patient_id="PID-1",
        patient_name="Doe^Jane",
        birth_date="19800229",
        sex="F",
        accession_number="ACC0001",
        study_instance_uid="1.2.840.99.7",
        referring_physician="House^Gregory",
        modality="XC",
        scheduled_date="20260312",
        scheduled_time="0930",
        requested_procedure_id="RP1",
        requested_procedure_description="Wound photos",
        requested_procedure_codes=(Code("WND", "99PB", "Wound"),),
        scheduled_procedure_step_id="SPS1",
        scheduled_procedure_step_description="Photo of the left heel",
        scheduled_protocol_codes=(Code("P1", "99PB", "Heel"),),
    )


def test_study_answer_becomes_an_order_of_the_existing_study() -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = "PID-1"
    ds.PatientName = "Doe^Jane"
    ds.StudyInstanceUID = "1.2.840.99.8"
    ds.StudyDate = "20250101"
    ds.StudyTime = "101500"
    ds.StudyID = "S17"
    ds.StudyDescription = "Dermatology"
    ds.ModalitiesInStudy = ["XC", "OT"]
    ds.AccessionNumber = "ACC0002"
    answer = round_trip(ds)

    answers.decode_answer(answer, "ISO_IR 100")
    order = answers.study_order(answer)

    assert order.source == "study"
    assert (order.study_date, order.study_time, order.study_id) == (
        "20250101",
        "101500",
        "S17",
    )
    assert order.study_description == "Dermatology"
    assert order.modality == "XC\\OT"
    assert order.description == "Dermatology"


# Missing, empty and padded values


def test_answer_without_any_key_is_an_order_of_empty_values() -> None:
    order = the_order(round_trip(Dataset()))

    assert order == Order(source="worklist")


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_missing_keys_are_empty_and_the_others_are_kept(implicit: bool) -> None:
    ds = worklist_answer()
    for keyword in (
        "PatientBirthDate",
        "PatientSex",
        "ReferringPhysicianName",
        "RequestedProcedureCodeSequence",
        "RequestedProcedureID",
    ):
        del ds[keyword]
    del ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID

    order = the_order(round_trip(ds, implicit))

    assert (order.birth_date, order.sex, order.referring_physician) == ("", "", "")
    assert order.requested_procedure_codes == ()
    assert order.requested_procedure_id == ""
    assert order.scheduled_procedure_step_id == ""
    assert (order.patient_id, order.modality) == ("PID-1", "XC")


def test_empty_values_are_empty() -> None:
    ds = worklist_answer(
        PatientName="", PatientBirthDate="", AccessionNumber="", StudyInstanceUID=""
    )
    ds.ScheduledProcedureStepSequence = Sequence([step(modality="", step_id="")])

    order = the_order(round_trip(ds))

    assert (order.patient_name, order.birth_date, order.accession_number) == (
        "",
        "",
        "",
    )
    assert (order.study_instance_uid, order.modality) == ("", "")
    assert order.scheduled_procedure_step_id == ""


def test_padded_values_are_trimmed() -> None:
    ds = worklist_answer(
        AccessionNumber="ACC0001 ", PatientID=" PID-1  ", PatientName="Doe^Jane "
    )
    ds.ScheduledProcedureStepSequence = Sequence([step(modality="XC ")])

    order = the_order(round_trip(ds))

    assert order.accession_number == "ACC0001"
    assert order.patient_id == "PID-1"
    assert order.patient_name == "Doe^Jane"
    assert order.modality == "XC"


# The Scheduled Procedure Step Sequence


@pytest.mark.parametrize("steps", [None, []], ids=["absent", "empty"])
def test_answer_without_a_scheduled_step_is_one_order_without_step_values(
    steps: list[Dataset] | None,
) -> None:
    ds = worklist_answer()
    if steps is None:
        del ds.ScheduledProcedureStepSequence
    else:
        ds.ScheduledProcedureStepSequence = Sequence(steps)

    order = the_order(round_trip(ds))

    assert order.patient_id == "PID-1"
    assert order.accession_number == "ACC0001"
    assert (order.modality, order.scheduled_date, order.scheduled_time) == ("", "", "")
    assert order.scheduled_procedure_step_id == ""
    assert order.scheduled_protocol_codes == ()


def test_two_scheduled_steps_are_two_orders_of_the_same_request() -> None:
    ds = worklist_answer()
    ds.ScheduledProcedureStepSequence = Sequence(
        [step("XC", "SPS1"), step("OT", "SPS2")]
    )

    first, second = worklist_orders(round_trip(ds))

    assert (first.modality, first.scheduled_procedure_step_id) == ("XC", "SPS1")
    assert (second.modality, second.scheduled_procedure_step_id) == ("OT", "SPS2")
    assert first.patient_id == second.patient_id == "PID-1"
    assert first.accession_number == second.accession_number == "ACC0001"


# Code sequences


def test_empty_code_items_are_ignored_and_the_others_kept() -> None:
    empty = code("", "", "")
    ds = worklist_answer(
        RequestedProcedureCodeSequence=Sequence(
            [empty, code("WND", "99PB", "Wound"), Dataset()]
        )
    )

    order = the_order(round_trip(ds))

    assert order.requested_procedure_codes == (Code("WND", "99PB", "Wound"),)


def test_incomplete_code_items_are_kept_for_apply_to_judge() -> None:
    ds = worklist_answer(RequestedProcedureCodeSequence=Sequence([code("WND", "", "")]))

    order = the_order(round_trip(ds))

    assert order.requested_procedure_codes == (Code("WND", "", ""),)


def test_long_code_value_and_coding_scheme_version_are_read() -> None:
    item = Dataset()
    item.LongCodeValue = "urn:example:wound-photography"
    item.CodingSchemeDesignator = "99PB"
    item.CodingSchemeVersion = "2026"
    item.CodeMeaning = "Wound photography"
    ds = worklist_answer(RequestedProcedureCodeSequence=Sequence([item]))

    order = the_order(round_trip(ds, implicit=True))

    assert order.requested_procedure_codes == (
        Code("urn:example:wound-photography", "99PB", "Wound photography", "2026"),
    )


# Character sets


@pytest.mark.parametrize(
    ("charset", "name"),
    [
        ("ISO_IR 100", GERMAN),
        ("ISO_IR 192", GERMAN),
        ("ISO_IR 192", JAPANESE),
        ("GB18030", CHINESE),
    ],
)
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_declared_character_set_decodes_names_and_descriptions(
    charset: str, name: str, implicit: bool
) -> None:
    ds = worklist_answer(SpecificCharacterSet=charset, PatientName=name)
    ds.RequestedProcedureDescription = "Größe Ärm"
    ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription = "Fuß"

    order = the_order(round_trip(ds, implicit))

    assert order.patient_name == name
    assert order.requested_procedure_description == "Größe Ärm"
    assert order.scheduled_procedure_step_description == "Fuß"


def test_latin1_is_sent_as_latin1_bytes() -> None:
    # The test would prove nothing if pydicom wrote UTF-8 under ISO_IR 100.
    ds = worklist_answer(SpecificCharacterSet="ISO_IR 100", PatientName=GERMAN)

    assert GERMAN.encode("latin-1") in encoded(ds, implicit=False)


def test_japanese_iso_2022_name_keeps_all_three_groups() -> None:
    ds = worklist_answer(
        SpecificCharacterSet=["", "ISO 2022 IR 87"], PatientName=JAPANESE
    )
    data = encoded(ds, implicit=False)
    # pydicom's encoder switched to JIS X 0208 for the ideographic group.
    assert b"=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=" in data

    order = the_order(received(data, implicit=False))

    assert order.patient_name == JAPANESE
    assert order.patient_name.split("=") == [
        "Yamada^Tarou",
        "山田^太郎",
        "やまだ^たろう",
    ]


def undeclared(text: str, encoding: str) -> Dataset:
    """A worklist answer whose text is 8-bit bytes under no Specific Character
    Set, as some worklist servers send it."""
    ds = Dataset()
    ds.add_new(0x00100010, "PN", text.encode(encoding))  # Patient's Name
    ds.add_new(0x00100020, "LO", b"PID-1 ")  # Patient ID
    ds.add_new(0x00321060, "LO", "Größe Ärm".encode(encoding))
    item = Dataset()
    item.add_new(0x00400007, "LO", "Fuß ".encode(encoding))
    item.add_new(0x00080100, "SH", b"P1")
    item.add_new(0x00080102, "SH", b"99PB")
    item.add_new(0x00080104, "LO", "Sprunggelenk Öl ".encode(encoding))
    sps = Dataset()
    sps.add_new(0x00400007, "LO", "Fuß ".encode(encoding))
    sps.ScheduledProtocolCodeSequence = Sequence([item])
    ds.ScheduledProcedureStepSequence = Sequence([sps])
    return ds


@pytest.mark.parametrize(
    ("default_charset", "encoding"),
    [("ISO_IR 100", "latin-1"), ("ISO_IR 192", "utf-8")],
)
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_undeclared_8_bit_text_is_read_with_the_default_charset(
    default_charset: str, encoding: str, implicit: bool
) -> None:
    ds = undeclared(GERMAN, encoding)
    assert GERMAN.encode(encoding) in encoded(ds, implicit)

    order = the_order(round_trip(ds, implicit), default_charset)

    assert order.patient_name == GERMAN
    assert order.patient_id == "PID-1"
    # Every text, not the names only, and inside the sequences too.
    assert order.requested_procedure_description == "Größe Ärm"
    assert order.scheduled_procedure_step_description == "Fuß"
    assert order.scheduled_protocol_codes == (Code("P1", "99PB", "Sprunggelenk Öl"),)


def test_latin1_bytes_under_a_utf8_default_become_replacement_characters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    order = the_order(round_trip(undeclared(GERMAN, "latin-1")), "ISO_IR 192")

    assert "\ufffd" in order.patient_name  # apply refuses such a name
    assert "Failed to decode" in caplog.text
    assert "ller" not in caplog.text and "Jörg" not in caplog.text


def test_unknown_character_set_does_not_break_the_answer_nor_log_the_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ds = worklist_answer(SpecificCharacterSet="ISO_IR 100", PatientName=GERMAN)
    data = encoded(ds, implicit=False).replace(b"ISO_IR 100", b"ISO_IR 999")
    # pynetdicom's own read warns once already; what matters is what we do next.
    with pytest.warns(UserWarning, match="Unknown encoding 'ISO_IR 999'"):
        answer = received(data, implicit=False)

    order = the_order(answer)

    assert order.patient_id == "PID-1"
    assert order.accession_number == "ACC0001"
    assert "ISO_IR 999" in caplog.text  # the warning was caught and logged
    for value in (GERMAN, "ller^J", "Doe", "PID-1"):
        assert value not in caplog.text


# Values that do not fit their VR


def explicit_element(group: int, element: int, vr: str, value: bytes) -> bytes:
    """One Explicit VR Little Endian element with a 16-bit length, as it is."""
    return struct.pack("<HH2sH", group, element, vr.encode(), len(value)) + value


@pytest.mark.parametrize("default_charset", ["ISO_IR 100", "ISO_IR 192"])
def test_value_of_a_wrong_length_for_its_vr_does_not_break_the_answer(
    caplog: pytest.LogCaptureFixture, default_charset: str
) -> None:
    caplog.set_level(logging.DEBUG)
    # A US of three bytes sorts before every key we read: it stops pydicom's
    # decoding of the whole answer if it is not handled.
    odd_us = explicit_element(0x0008, 0x0040, "US", b"\x01\x02\x03")
    data = odd_us + encoded(undeclared(GERMAN, "utf-8"), implicit=False)

    order = the_order(received(data, implicit=False), default_charset)

    assert order.patient_id == "PID-1"
    if default_charset == "ISO_IR 192":
        assert order.patient_name == GERMAN
        assert order.scheduled_procedure_step_description == "Fuß"
    assert "BytesLengthException" in caplog.text
    assert "\\x01\\x02\\x03" not in caplog.text


def test_value_too_long_for_its_vr_is_kept_for_apply_to_refuse(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with config.disable_value_validation():
        ds = worklist_answer(AccessionNumber="ACC-0123456789-XYZ")

    order = the_order(round_trip(ds))

    assert order.accession_number == "ACC-0123456789-XYZ"
    assert "exceeds the maximum length of 16 allowed for VR SH" in caplog.text
    assert "ACC-0123456789-XYZ" not in caplog.text


# Damaged answers: left out, counted as unreadable by the search


def test_declared_default_repertoire_with_8_bit_text_uses_the_default_charset() -> None:
    ds = undeclared(GERMAN, "latin-1")
    ds.add_new(0x00080005, "CS", b"ISO_IR 6")

    order = the_order(round_trip(ds), "ISO_IR 100")

    assert order.patient_name == GERMAN


@pytest.mark.parametrize("encoding", ["euc_jp", "shift_jis"])
def test_8_bit_text_under_a_7_bit_japanese_charset_is_damaged(encoding: str) -> None:
    ds = Dataset()
    ds.add_new(0x00080005, "CS", b"\\ISO 2022 IR 87")
    ds.add_new(0x00100010, "PN", "Yamada^Tarou=山田^太郎".encode(encoding))
    ds.add_new(0x00100020, "LO", b"PID-1 ")

    assert not answers.decode_answer(round_trip(ds), "ISO_IR 100")


def test_a_value_shorter_than_its_length_is_damaged() -> None:
    data = encoded(worklist_answer(), implicit=False)
    # Cut the answer inside its Patient ID (the last top-level value read).
    cut = data.index(b"PID-1") + 3
    answer = received(data[:cut], implicit=False)

    assert not answers.decode_answer(answer, "ISO_IR 100")


def test_an_intact_answer_is_not_damaged() -> None:
    assert answers.decode_answer(round_trip(worklist_answer()), "ISO_IR 100")
