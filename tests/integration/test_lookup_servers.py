"""`pacsbridge lookup --json` against real servers, checked against DCMTK's findscu.

Each query is asked twice on the same server with the same identifier: by
findscu (the reference client) and by `pacsbridge lookup --json`. The two lists
must be equal, and where the server keeps names intact they must equal the
names the test data were written with, in every character set.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from pacsbridge.lookup import LookupQuery, date_filter
from pacsbridge.lookup.queries import study_identifier, worklist_identifier
from tests.lookup_peers import QueryRetrieveSCP, WorklistSCP
from tests.lookup_reference import (
    Model,
    Row,
    reference_rows,
    run_lookup,
    sorted_rows,
    write_lookup_config,
)
from tests.peers import Orthanc
from tests.studies import StudyFiles
from tests.worklists import KOREAN_NAME, WorklistFiles


def cli_args(query: LookupQuery) -> list[str]:
    args = []
    for option, value in (
        ("--name", query.patient_name),
        ("--patient-id", query.patient_id),
        ("--accession", query.accession_number),
        ("--modality", query.modality),
        ("--date", query.dates),
    ):
        if value:
            args += [option, value]
    return args


def both_answers(
    tmp_path: Path,
    model: Model,
    ae_title: str,
    port: int,
    query: LookupQuery,
) -> tuple[list[Row], list[Row]]:
    """(ours, findscu's) for the same query on the same server.

    Every query of these tests finds something: two empty lists would prove
    nothing.
    """
    identifier: Dataset = (
        worklist_identifier(query) if model == "worklist" else study_identifier(query)
    )
    theirs = reference_rows(port, ae_title, model, identifier, tmp_path / "findscu")
    config = write_lookup_config(tmp_path, model, ae_title, port)
    ours = run_lookup(config, *cli_args(query))
    assert theirs, f"findscu found nothing for {_query_id(query)}"
    return ours, theirs


def worklist_queries(today: dt.date) -> list[LookupQuery]:
    day = today.strftime("%Y%m%d")
    week = date_filter(None, 7, today + dt.timedelta(days=2))
    return [
        LookupQuery(),
        LookupQuery(dates=day),
        LookupQuery(dates=week),
        LookupQuery(dates="19950101-19961231"),
        LookupQuery(patient_name="Yamada*"),
        LookupQuery(patient_name="Kierkeg*"),
        LookupQuery(patient_name="?AYDN*"),
        LookupQuery(patient_id="PBWL-P06"),
        LookupQuery(accession_number="PBWL0004"),
        LookupQuery(modality="ES"),
        LookupQuery(modality="XC", dates=day),
    ]


def study_queries(today: dt.date) -> list[LookupQuery]:
    return [
        LookupQuery(),
        LookupQuery(dates=today.strftime("%Y%m%d")),
        LookupQuery(dates=date_filter(None, 2, today)),
        LookupQuery(patient_name="Smith*"),
        LookupQuery(patient_id="PBST-P02"),
        LookupQuery(accession_number="PBST0001"),
        LookupQuery(modality="XC"),
    ]


def _query_id(query: LookupQuery) -> str:
    return " ".join(cli_args(query)) or "everything"


@pytest.mark.parametrize("number", range(11))
def test_worklist_lookup_equals_findscu_on_wlmscpfs(
    number: int, tmp_path: Path, wlmscpfs: WorklistSCP, worklist_files: WorklistFiles
) -> None:
    query = worklist_queries(worklist_files.today)[number]
    ours, theirs = both_answers(
        tmp_path, "worklist", wlmscpfs.ae_title, wlmscpfs.port, query
    )
    assert ours == theirs, _query_id(query)


@pytest.mark.parametrize("number", range(11))
def test_worklist_lookup_equals_findscu_on_orthanc(
    number: int,
    tmp_path: Path,
    orthanc_worklist: Orthanc,
    worklist_files: WorklistFiles,
) -> None:
    query = worklist_queries(worklist_files.today)[number]
    ours, theirs = both_answers(
        tmp_path, "worklist", orthanc_worklist.ae_title,
        orthanc_worklist.dicom_port, query,
    )  # fmt: skip
    # Orthanc keeps ISO 2022 escapes in its Korean answer (tests/PEER_NOTES.md):
    # both clients get the same damaged name, which is all we can compare.
    assert ours == theirs, _query_id(query)


@pytest.mark.parametrize("number", range(7))
def test_study_lookup_equals_findscu_on_orthanc(
    number: int, tmp_path: Path, orthanc_studies: Orthanc, study_files: StudyFiles
) -> None:
    query = study_queries(study_files.today)[number]
    ours, theirs = both_answers(
        tmp_path, "study", orthanc_studies.ae_title, orthanc_studies.dicom_port, query
    )
    assert ours == theirs, _query_id(query)


@pytest.mark.parametrize("number", range(7))
def test_study_lookup_equals_findscu_on_dcmqrscp(
    number: int, tmp_path: Path, dcmqrscp: QueryRetrieveSCP, study_files: StudyFiles
) -> None:
    query = study_queries(study_files.today)[number]
    ours, theirs = both_answers(
        tmp_path, "study", dcmqrscp.ae_title, dcmqrscp.port, query
    )
    assert ours == theirs, _query_id(query)


def expected_worklist_rows(files: WorklistFiles, day: dt.date) -> list[Row]:
    rows = []
    for entry in files.on_day(day):
        rows.append(
            {
                "patient_id": entry.patient_id,
                "patient_name": entry.patient_name,
                "birth_date": entry.birth_date,
                "sex": entry.sex,
                "accession_number": entry.accession_number,
                "study_instance_uid": entry.study_instance_uid,
                "referring_physician": entry.referring_physician,
                "modality": entry.modality,
                "scheduled_date": entry.scheduled_da(files.today),
                "scheduled_time": entry.scheduled_time,
                "description": entry.requested_procedure_description,
            }
        )
    return sorted_rows(rows)


@pytest.mark.parametrize("server", ["wlmscpfs", "orthanc"])
def test_todays_worklist_has_every_name_intact(
    server: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    worklist_files: WorklistFiles,
) -> None:
    if server == "wlmscpfs":
        scp: WorklistSCP = request.getfixturevalue("wlmscpfs")
        ae_title, port = scp.ae_title, scp.port
    else:
        orthanc: Orthanc = request.getfixturevalue("orthanc_worklist")
        ae_title, port = orthanc.ae_title, orthanc.dicom_port
    config = write_lookup_config(tmp_path, "worklist", ae_title, port)

    ours = run_lookup(config, "--date", "today")

    expected = expected_worklist_rows(worklist_files, worklist_files.today)
    assert {row["patient_name"] for row in expected} >= {
        "Müller^Jürgen",
        "Кузнецова^Алёна",
        "Yamada^Tarou=山田^太郎=やまだ^たろう",
    }
    assert ours == expected


def test_every_charset_arrives_intact_from_wlmscpfs(
    tmp_path: Path, wlmscpfs: WorklistSCP, worklist_files: WorklistFiles
) -> None:
    config = write_lookup_config(tmp_path, "worklist", wlmscpfs.ae_title, wlmscpfs.port)

    ours = run_lookup(config, "--name", "*")

    names = {row["accession_number"]: row["patient_name"] for row in ours}
    for entry in worklist_files.entries:
        if entry.accession_number:
            assert names[entry.accession_number] == entry.patient_name, entry.key
    assert names["PBWL0007"] == KOREAN_NAME


def test_study_lookup_on_orthanc_keeps_every_name(
    tmp_path: Path, orthanc_studies: Orthanc, study_files: StudyFiles
) -> None:
    config = write_lookup_config(
        tmp_path, "study", orthanc_studies.ae_title, orthanc_studies.dicom_port
    )

    ours = run_lookup(config)

    found = {row["study_instance_uid"]: row for row in ours}
    assert len(found) == len(study_files.specs)
    for spec in study_files.specs:
        row = found[spec.study_instance_uid]
        assert row["patient_name"] == spec.patient_name, spec.key
        assert row["patient_id"] == spec.patient_id
        assert row["accession_number"] == spec.accession_number
        assert row["scheduled_date"] == spec.study_da
        assert row["description"] == spec.study_description


def test_undeclared_utf8_from_wlmscpfs_is_read_with_the_default_charset(
    tmp_path: Path, worklist_files: WorklistFiles
) -> None:
    # Without -csk, wlmscpfs sends UTF-8 bytes with no Specific Character Set.
    entry = worklist_files.entry("cyrillic-today")
    paths = [p for p in worklist_files.paths if p.name == entry.file_name]
    with WorklistSCP(paths, keep_charset=False, workdir=tmp_path / "wl") as scp:
        config = write_lookup_config(
            tmp_path, "worklist", scp.ae_title, scp.port,
            'default_charset = "ISO_IR 192"',
        )  # fmt: skip
        ours = run_lookup(config)

    assert [row["patient_name"] for row in ours] == [entry.patient_name]


def test_configured_date_range_applies_when_no_date_is_given(
    tmp_path: Path, wlmscpfs: WorklistSCP, worklist_files: WorklistFiles
) -> None:
    config = write_lookup_config(
        tmp_path, "worklist", wlmscpfs.ae_title, wlmscpfs.port, "date_range_days = 2"
    )

    ours = run_lookup(config)

    yesterday = worklist_files.today - dt.timedelta(days=1)
    expected = expected_worklist_rows(
        worklist_files, yesterday
    ) + expected_worklist_rows(worklist_files, worklist_files.today)
    assert ours == sorted_rows(expected)
    assert run_lookup(config, "--date", "19951015") != []  # a typed date wins
