"""The query peer harness: its test data, and what each peer answers findscu.

These tests pin down what the lookup tests rely on: every worklist item and
study reaches each peer intact, date keys select what they should, and the
quirks written up in tests/PEER_NOTES.md are still there.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Literal

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.findscu import FindSCUError, findscu
from tests.lookup_peers import QueryRetrieveSCP, WorklistSCP
from tests.peers import Orthanc, require_or_skip
from tests.studies import StudyFiles
from tests.worklists import (
    JAPANESE_NAME_BYTES,
    KOREAN_NAME_BYTES,
    WorklistFiles,
    write_worklist,
)

Peer = WorklistSCP | QueryRetrieveSCP | Orthanc
Model = Literal["worklist", "study"]

WORKLIST_KEYS = [
    "PatientName=",
    "PatientID=",
    "AccessionNumber=",
    "RequestedProcedureDescription=",
    "(0040,0100)[0].Modality=",
    "(0040,0100)[0].ScheduledProcedureStepStartDate=",
]
STUDY_KEYS = [
    "QueryRetrieveLevel=STUDY",
    "SpecificCharacterSet=ISO_IR 192",
    "PatientName=",
    "PatientID=",
    "StudyInstanceUID=",
    "StudyDate=",
    "AccessionNumber=",
    "ReferringPhysicianName=",
    "StudyDescription=",
    "ModalitiesInStudy=",
    "NumberOfStudyRelatedInstances=",
]


@pytest.fixture(autouse=True)
def _findscu_installed() -> None:
    require_or_skip(["findscu"])


def _query(
    peer: Peer, model: Model, keys: list[str | bytes], workdir: Path
) -> list[Dataset]:
    port = peer.dicom_port if isinstance(peer, Orthanc) else peer.port
    return findscu(port, peer.ae_title, model, keys, workdir=workdir)


def _worklist(peer: Peer, keys: list[str | bytes], workdir: Path) -> list[Dataset]:
    return _query(peer, "worklist", [*WORKLIST_KEYS, *keys], workdir)


def _charset(ds: Dataset) -> str:
    value = ds.get("SpecificCharacterSet", "")
    return value if isinstance(value, str) else "\\".join(value)


def _by_patient_id(answers: list[Dataset]) -> dict[str, Dataset]:
    return {str(ds.PatientID): ds for ds in answers}


def _raw_name(ds: Dataset) -> bytes:
    return bytes(ds.get_item("PatientName").value).rstrip(b" ")


# The data


def test_iso_2022_names_carry_the_escape_sequences_of_annex_h_and_i(
    worklist_files: WorklistFiles,
) -> None:
    japanese = dcmread(worklist_files.folder / "japanese-today.wl")
    korean = dcmread(worklist_files.folder / "korean-past.wl")

    assert _raw_name(japanese) == JAPANESE_NAME_BYTES
    assert _raw_name(korean) == KOREAN_NAME_BYTES
    assert japanese.SpecificCharacterSet == ["", "ISO 2022 IR 87"]
    assert korean.SpecificCharacterSet == ["", "ISO 2022 IR 149"]


def test_relative_dates_count_from_the_day_the_files_are_written(
    tmp_path: Path,
) -> None:
    require_or_skip(["dump2dcm"])
    day = datetime.date(2030, 3, 1)

    written = write_worklist(tmp_path, include_dcmtk_samples=False, today=day)

    dates = {
        path.stem: dcmread(path)
        .ScheduledProcedureStepSequence[0]
        .ScheduledProcedureStepStartDate
        for path in written.paths
    }
    assert dates["latin1-today"] == "20300301"
    assert dates["latin1-yesterday"] == "20300228"
    assert dates["vietnamese-later"] == "20300311"
    assert dates["korean-past"] == "20240315"


def test_dcmtk_sample_facts_match_the_files_dump2dcm_wrote(
    worklist_files: WorklistFiles,
) -> None:
    samples = worklist_files.dcmtk_samples

    for sample in samples:
        ds = dcmread(worklist_files.folder / sample.file_name)
        assert ds.AccessionNumber == sample.accession_number
        assert ds.PatientID == sample.patient_id
        assert str(ds.PatientName) == sample.patient_name
    assert len(samples) == 10
    assert samples[1].accession_number == "00002"  # the first of two in the dump


# wlmscpfs


def test_wlmscpfs_returns_every_item_with_its_names_and_charset(
    wlmscpfs: WorklistSCP, worklist_files: WorklistFiles, tmp_path: Path
) -> None:
    answers = _worklist(wlmscpfs, [], tmp_path)

    by_id = _by_patient_id(answers)
    for entry in worklist_files.entries:
        ds = by_id[entry.patient_id]
        assert str(ds.PatientName) == entry.patient_name, entry.key
        assert ds.RequestedProcedureDescription == entry.requested_procedure_description
        assert _charset(ds) == entry.charset, entry.key
    samples = {sample.accession_number for sample in worklist_files.dcmtk_samples}
    assert samples <= {str(ds.AccessionNumber) for ds in answers}
    assert len(answers) == len(worklist_files.paths)


def test_wlmscpfs_without_csk_drops_specific_character_set(
    worklist_files: WorklistFiles, tmp_path: Path
) -> None:
    require_or_skip(["wlmscpfs"])
    files = [worklist_files.folder / "latin1-today.wl"]

    with WorklistSCP(files, keep_charset=False, workdir=tmp_path / "scp") as scp:
        [answer] = _worklist(scp, [], tmp_path / "findscu")

    assert "SpecificCharacterSet" not in answer
    assert _raw_name(answer) == "Müller^Jürgen".encode("latin-1")


def test_wlmscpfs_matches_bytes_without_converting_charsets(
    wlmscpfs: WorklistSCP, tmp_path: Path
) -> None:
    utf8 = ["SpecificCharacterSet=ISO_IR 192", "PatientName=Müller*"]
    latin1 = [
        "SpecificCharacterSet=ISO_IR 100",
        "PatientName=Müller*".encode("latin-1"),
    ]

    assert _worklist(wlmscpfs, utf8, tmp_path) == []
    assert len(_worklist(wlmscpfs, latin1, tmp_path)) == 1
    with pytest.raises(FindSCUError, match="DataSetDoesNotMatchSOPClass"):
        _worklist(wlmscpfs, ["PatientName=Müller*"], tmp_path)  # no charset


def test_wlmscpfs_refuses_iso_2022_escape_sequences_in_a_name_key(
    wlmscpfs: WorklistSCP, tmp_path: Path
) -> None:
    keys = [
        "SpecificCharacterSet=\\ISO 2022 IR 87",
        b"PatientName=" + JAPANESE_NAME_BYTES,
    ]

    with pytest.raises(FindSCUError, match="DataSetDoesNotMatchSOPClass"):
        _worklist(wlmscpfs, keys, tmp_path)


# Both worklist peers


@pytest.fixture(params=["wlmscpfs", "orthanc_worklist"])
def worklist_peer(request: pytest.FixtureRequest) -> Peer:
    peer: Peer = request.getfixturevalue(request.param)
    return peer


@pytest.mark.parametrize("days", [0, -1, 1, 10, None])
def test_a_step_date_inside_the_sequence_selects_that_day(
    worklist_peer: Peer,
    worklist_files: WorklistFiles,
    days: int | None,
    tmp_path: Path,
) -> None:
    today = worklist_files.today
    day = (
        datetime.date(2024, 3, 15) if days is None else today + datetime.timedelta(days)
    )
    key = f"(0040,0100)[0].ScheduledProcedureStepStartDate={day:%Y%m%d}"

    answers = _worklist(worklist_peer, [key], tmp_path)

    expected = {entry.patient_id for entry in worklist_files.on_day(day)}
    assert expected
    assert set(_by_patient_id(answers)) == expected


def test_a_step_date_at_the_top_level_is_ignored_or_matches_nothing(
    wlmscpfs: WorklistSCP,
    orthanc_worklist: Orthanc,
    worklist_files: WorklistFiles,
    tmp_path: Path,
) -> None:
    key = f"(0040,0002)={worklist_files.today:%Y%m%d}"

    assert len(_worklist(wlmscpfs, [key], tmp_path)) == len(worklist_files.paths)
    assert _worklist(orthanc_worklist, [key], tmp_path) == []


def test_wlmscpfs_matches_names_case_sensitively_and_orthanc_does_not(
    wlmscpfs: WorklistSCP, orthanc_worklist: Orthanc, tmp_path: Path
) -> None:
    lower = ["PatientName=roe*"]

    assert _worklist(wlmscpfs, lower, tmp_path) == []
    assert len(_worklist(wlmscpfs, ["PatientName=Roe*"], tmp_path)) == 1
    assert len(_worklist(orthanc_worklist, lower, tmp_path)) == 1


# Orthanc's worklist


def test_orthanc_worklist_returns_every_item_in_utf8(
    orthanc_worklist: Orthanc, worklist_files: WorklistFiles, tmp_path: Path
) -> None:
    answers = _worklist(orthanc_worklist, [], tmp_path)

    by_id = _by_patient_id(answers)
    for entry in worklist_files.entries:
        if entry.key == "korean-past":
            continue  # see the next test
        ds = by_id[entry.patient_id]
        assert str(ds.PatientName) == entry.patient_name, entry.key
        assert ds.RequestedProcedureDescription == entry.requested_procedure_description
    assert {_charset(ds) for ds in answers} == {"ISO_IR 192"}
    assert len(answers) == len(worklist_files.paths)


def test_orthanc_keeps_the_korean_escape_sequences_in_its_utf8_answer(
    orthanc_worklist: Orthanc, tmp_path: Path
) -> None:
    [answer] = _worklist(orthanc_worklist, ["PatientID=PBWL-P07"], tmp_path)

    assert _raw_name(answer).count(b"\x1b$)C") == 4
    with pytest.warns(UserWarning, match="unknown escape sequence"):
        name = str(answer.PatientName)
    assert name.replace("\x1b$)C", "") == "Hong^Gildong=洪^吉洞=홍^길동"


def test_orthanc_latin1_drops_what_latin1_cannot_hold(
    orthanc_latin1_lookup: Orthanc, tmp_path: Path
) -> None:
    keys = ["SpecificCharacterSet=ISO_IR 192"]

    by_id = _by_patient_id(_worklist(orthanc_latin1_lookup, keys, tmp_path))

    assert str(by_id["PBWL-P01"].PatientName) == "Müller^Jürgen"
    assert str(by_id["PBWL-P03"].PatientName) == "^"
    assert str(by_id["PBWL-P06"].PatientName) == "Yamada^Tarou=^=^"
    assert {_charset(ds) for ds in by_id.values()} == {"ISO_IR 100"}


# Study Root


def test_dcmqrscp_returns_the_stored_studies(
    dcmqrscp: QueryRetrieveSCP, study_files: StudyFiles, tmp_path: Path
) -> None:
    answers = _query(dcmqrscp, "study", STUDY_KEYS, tmp_path)

    by_uid = {str(ds.StudyInstanceUID): ds for ds in answers}
    for spec in study_files.specs:
        ds = by_uid[spec.study_instance_uid]
        assert str(ds.PatientName) == spec.patient_name, spec.key
        assert ds.AccessionNumber == spec.accession_number
        assert ds.StudyDate == spec.study_da
        assert ds.StudyDescription == spec.study_description
        assert str(ds.ReferringPhysicianName) == spec.referring_physician
        assert "ModalitiesInStudy" not in ds
        assert "NumberOfStudyRelatedInstances" not in ds
    assert len(answers) == len(study_files.specs)


def test_dcmqrscp_converts_to_the_query_charset_except_from_iso_2022(
    dcmqrscp: QueryRetrieveSCP, tmp_path: Path
) -> None:
    answers = _query(dcmqrscp, "study", STUDY_KEYS, tmp_path)

    by_id = _by_patient_id(answers)
    assert _charset(by_id["PBST-P01"]) == "ISO_IR 192"  # stored as ISO_IR 100
    assert _raw_name(by_id["PBST-P01"]) == "Weiß^Günther".encode()
    assert _charset(by_id["PBST-P03"]) == "\\ISO 2022 IR 87"
    assert _raw_name(by_id["PBST-P03"]) == JAPANESE_NAME_BYTES


def test_orthanc_returns_the_stored_studies_in_utf8(
    orthanc_studies: Orthanc, study_files: StudyFiles, tmp_path: Path
) -> None:
    answers = _query(orthanc_studies, "study", STUDY_KEYS, tmp_path)

    by_uid = {str(ds.StudyInstanceUID): ds for ds in answers}
    for spec in study_files.specs:
        ds = by_uid[spec.study_instance_uid]
        assert str(ds.PatientName) == spec.patient_name, spec.key
        assert ds.AccessionNumber == spec.accession_number
        assert ds.StudyDate == spec.study_da
        assert ds.StudyDescription == spec.study_description
        assert ds.ModalitiesInStudy == spec.modality
        assert ds.NumberOfStudyRelatedInstances == spec.number_of_instances
        assert _charset(ds) == "ISO_IR 192"
    assert len(answers) == len(study_files.specs)


@pytest.fixture(params=["dcmqrscp", "orthanc_studies"])
def study_peer(request: pytest.FixtureRequest) -> Peer:
    peer: Peer = request.getfixturevalue(request.param)
    return peer


@pytest.mark.parametrize("days", [0, -1])
def test_a_study_date_selects_that_days_studies(
    study_peer: Peer, study_files: StudyFiles, days: int, tmp_path: Path
) -> None:
    day = study_files.today + datetime.timedelta(days)
    keys = [*STUDY_KEYS, f"StudyDate={day:%Y%m%d}"]

    answers = _query(study_peer, "study", keys, tmp_path)

    expected = {s.study_instance_uid for s in study_files.specs if s.study_date == day}
    assert len(expected) == 2
    assert {str(ds.StudyInstanceUID) for ds in answers} == expected
