"""What each answer of a C-FIND SCP becomes: orders, a truncated list, or an error.

The providers are real pynetdicom Modality Worklist and Study Root FIND SCPs on
127.0.0.1 whose answers the tests choose: pending answers, failure and cancel
statuses, silence until the time-out, a refused association, and more answers
than we keep. A query that did not end in success is never an empty list.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityWorklistInformationFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from pacsbridge import lookup
from pacsbridge.config import Settings
from pacsbridge.demo import sample_photos
from pacsbridge.errors import LookupFailed
from tests.peers import free_port

AE_TITLE = "FINDSCP"
PATIENT_NAME = "Zyxwvut^Quorra"
PATIENT_ID = "PID-58213947"
JSON_KEYS = [
    "patient_id",
    "patient_name",
    "birth_date",
    "sex",
    "accession_number",
    "study_instance_uid",
    "referring_physician",
    "modality",
    "scheduled_date",
    "scheduled_time",
    "description",
]

Handler = Callable[[Any], Iterator[tuple[Any, Dataset | None]]]


def worklist_item(
    accession: str = "ACC0001",
    step_id: str = "SPS1",
    patient_id: str = PATIENT_ID,
    study_uid: str = "1.2.840.99.1",
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = "House^Gregory"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19510917"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid
    ds.RequestedProcedureID = "RP1"
    ds.RequestedProcedureDescription = "Wound photos"
    step = Dataset()
    step.Modality = "XC"
    step.ScheduledProcedureStepStartDate = "20260312"
    step.ScheduledProcedureStepStartTime = "093000"
    step.ScheduledProcedureStepID = step_id
    step.ScheduledProcedureStepDescription = "Left heel"
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


def study_item() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.StudyInstanceUID = "1.2.840.99.2"
    ds.StudyDate = "20250101"
    ds.StudyTime = "101500"
    ds.StudyID = "S17"
    ds.StudyDescription = "Dermatology"
    ds.AccessionNumber = "ACC0002"
    ds.ModalitiesInStudy = ["CT", "MR"]
    return ds


def pending(*answers: Dataset) -> Handler:
    def handler(event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        for answer in answers:
            yield 0xFF00, answer

    return handler


def final(status: int, comment: str = "") -> Handler:
    """One pending answer, then ``status`` (with an Error Comment)."""

    def handler(event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        yield 0xFF00, worklist_item()
        rsp = Dataset()
        rsp.Status = status
        if comment:
            rsp.ErrorComment = comment
        yield rsp, None

    return handler


@contextmanager
def find_scp(
    on_find: Handler,
    *,
    require_called_aet: bool = False,
    identifiers: list[Dataset] | None = None,
) -> Iterator[int]:
    """A Modality Worklist and Study Root FIND SCP; yields its port."""
    ae = AE(ae_title=AE_TITLE)
    ae.require_called_aet = require_called_aet
    syntaxes = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    ae.add_supported_context(ModalityWorklistInformationFind, syntaxes)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind, syntaxes)

    def handle(event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        if identifiers is not None:
            identifiers.append(event.identifier)
        yield from on_find(event)

    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, handle)]
    )
    assert server is not None
    try:
        yield int(server.server_address[1])
    finally:
        ae.shutdown()


def settings(port: int, **lookup_values: object) -> Settings:
    values = {"ae_title": AE_TITLE, "host": "127.0.0.1", "port": port, "timeout": 5}
    return Settings.model_validate({"lookup": values | lookup_values})


def search(
    port: int, provider: lookup.Provider = "worklist", **values: object
) -> lookup.SearchResult:
    return lookup.search(settings(port, **values), lookup.LookupQuery(), provider)


# Statuses


def test_pending_answers_are_collected_until_success() -> None:
    items = [worklist_item(f"ACC000{n}", f"SPS{n}") for n in range(1, 4)]

    with find_scp(pending(*items)) as port:
        result = search(port)

    assert result.provider == "worklist"
    assert not result.truncated
    assert [o.accession_number for o in result.orders] == [
        "ACC0001",
        "ACC0002",
        "ACC0003",
    ]
    first = result.orders[0]
    assert (first.patient_id, first.patient_name) == (PATIENT_ID, PATIENT_NAME)
    assert (first.modality, first.scheduled_procedure_step_id) == ("XC", "SPS1")


def test_no_match_is_an_empty_list_after_success() -> None:
    with find_scp(pending()) as port:
        result = search(port)

    assert result.orders == []
    assert not result.truncated


def test_study_root_answers_become_orders_of_existing_studies() -> None:
    identifiers: list[Dataset] = []

    with find_scp(pending(study_item()), identifiers=identifiers) as port:
        result = search(port, "study")

    (order,) = result.orders
    assert order.source == "study"
    assert (order.study_instance_uid, order.study_id) == ("1.2.840.99.2", "S17")
    assert order.modality == "CT\\MR"
    (identifier,) = identifiers
    assert identifier.QueryRetrieveLevel == "STUDY"


def test_failure_status_names_the_provider_and_the_status_not_its_comment() -> None:
    # The comment is free text about a query for a patient: it may name them.
    with (
        find_scp(final(0xC001, "No entry for Doe^Jane")) as port,
        pytest.raises(LookupFailed, match="0xC001") as caught,
    ):
        search(port)

    message = str(caught.value)
    assert f"worklist provider ({AE_TITLE}@127.0.0.1:{port})" in message
    assert message.endswith("status 0xC001 (unable to process)")
    assert "Doe" not in message


def test_out_of_resources_is_a_failure_not_a_short_list() -> None:
    with (
        find_scp(final(0xA700)) as port,
        pytest.raises(LookupFailed, match=r"status 0xA700 \(out of resources\)$"),
    ):
        search(port)


def test_cancel_status_we_did_not_ask_for_is_a_failure() -> None:
    with (
        find_scp(final(0xFE00)) as port,
        pytest.raises(LookupFailed, match=r"0xFE00 \(the query was cancelled\)"),
    ):
        search(port)


def test_silent_provider_fails_at_the_time_out_without_hanging() -> None:
    def silent(event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        time.sleep(3)
        yield 0xFF00, worklist_item()

    with find_scp(silent) as port:
        started = time.monotonic()
        with pytest.raises(LookupFailed, match="gave no C-FIND answer within 1 s"):
            search(port, timeout=1)
        waited = time.monotonic() - started

    assert waited < 2.5


def test_rejected_association_names_the_provider() -> None:
    with (
        find_scp(pending(), require_called_aet=True) as port,
        pytest.raises(
            LookupFailed,
            match=r"worklist provider \(SOMEONE_ELSE@127\.0\.0\.1:\d+\) rejected the "
            r"association \(permanent: its AE title is not the one we called\)",
        ),
    ):
        search(port, ae_title="SOMEONE_ELSE")


# pynetdicom 3.0 leaves the socket of a refused connection open (its shutdown()
# of an unconnected socket raises before close()): a ResourceWarning, not ours.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket"
    ":pytest.PytestUnraisableExceptionWarning"
)
def test_nothing_listening_names_the_provider() -> None:
    port = free_port()

    with pytest.raises(
        LookupFailed,
        match=rf"study provider \({AE_TITLE}@127\.0\.0\.1:{port}\) could not be "
        "reached",
    ):
        search(port, "study", timeout=2)


# More answers than we keep


def test_answers_past_max_results_are_cancelled_and_the_list_truncated() -> None:
    cancelled = threading.Event()
    sent: list[int] = []

    def many(event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        for n in range(50):
            if event.is_cancelled:
                cancelled.set()
                yield 0xFE00, None
                return
            sent.append(n)
            yield 0xFF00, worklist_item(f"ACC{n:04d}", f"SPS{n}")
            time.sleep(0.05)

    with find_scp(many) as port:
        result = search(port, max_results=3)

    assert [o.accession_number for o in result.orders] == [
        "ACC0000",
        "ACC0001",
        "ACC0002",
    ]
    assert result.truncated
    assert cancelled.is_set()
    assert len(sent) < 50


def test_a_provider_that_ignores_the_cancel_is_cut_off_after_its_time_out() -> None:
    sent: list[int] = []

    def endless(event: Any) -> Iterator[tuple[Any, Dataset | None]]:
        for n in range(400):  # bounded, so the test's SCP thread ends too
            sent.append(n)
            yield 0xFF00, worklist_item(f"ACC{n:04d}", f"SPS{n}")
            time.sleep(0.02)
        yield 0x0000, None

    with find_scp(endless) as port:
        result = search(port, max_results=3, timeout=1)

    assert result.truncated
    assert len(result.orders) == 3
    assert len(sent) < 400  # the association was aborted, not read to the end


def test_exactly_max_results_answers_are_not_truncated() -> None:
    items = [worklist_item(f"ACC000{n}", f"SPS{n}") for n in range(3)]

    with find_scp(pending(*items)) as port:
        result = search(port, max_results=3)

    assert len(result.orders) == 3
    assert not result.truncated


# Answers that are thin


def test_answers_without_keys_or_with_empty_values_are_empty_fields() -> None:
    bare = Dataset()
    bare.PatientID = PATIENT_ID
    empty = worklist_item()
    for keyword in (
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "AccessionNumber",
        "StudyInstanceUID",
    ):
        setattr(empty, keyword, "")
    empty.ScheduledProcedureStepSequence = Sequence([])

    with find_scp(pending(bare, empty)) as port:
        first, second = search(port).orders

    assert first.patient_id == PATIENT_ID
    assert (first.patient_name, first.accession_number, first.modality) == ("", "", "")
    assert (second.patient_name, second.birth_date, second.sex) == ("", "", "")
    assert (second.accession_number, second.study_instance_uid) == ("", "")
    assert (second.modality, second.scheduled_date) == ("", "")
    assert second.requested_procedure_description == "Wound photos"


# The command line


def write_config(folder: Path, port: int, provider: str = "worklist") -> Path:
    config = folder / "pacsbridge.toml"
    config.write_text(
        f"""
[local]
data_dir = "data"
[lookup]
provider = "{provider}"
ae_title = "{AE_TITLE}"
host = "127.0.0.1"
port = {port}
timeout = 5
"""
    )
    return config


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pacsbridge", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_lookup_json_prints_the_designs_keys_for_each_order(tmp_path: Path) -> None:
    with find_scp(pending(worklist_item())) as port:
        done = run_cli("--config", write_config(tmp_path, port), "lookup", "--json")

    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert list(row) == JSON_KEYS
    assert row == {
        "patient_id": PATIENT_ID,
        "patient_name": PATIENT_NAME,
        "birth_date": "19510917",
        "sex": "F",
        "accession_number": "ACC0001",
        "study_instance_uid": "1.2.840.99.1",
        "referring_physician": "House^Gregory",
        "modality": "XC",
        "scheduled_date": "20260312",
        "scheduled_time": "093000",
        "description": "Wound photos",
    }


def test_lookup_json_of_a_study_gives_its_date_as_the_scheduled_one(
    tmp_path: Path,
) -> None:
    with find_scp(pending(study_item())) as port:
        config = write_config(tmp_path, port, provider="study")
        done = run_cli("--config", config, "lookup", "--json")

    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert list(row) == JSON_KEYS
    assert (row["scheduled_date"], row["scheduled_time"]) == ("20250101", "101500")
    assert (row["modality"], row["description"]) == ("CT\\MR", "Dermatology")


def test_lookup_failure_is_exit_1_naming_the_provider(tmp_path: Path) -> None:
    with find_scp(final(0xC001, "Worklist database offline")) as port:
        done = run_cli("--config", write_config(tmp_path, port), "lookup", "--json")

    assert done.returncode == 1
    assert f"worklist provider ({AE_TITLE}@127.0.0.1:{port})" in done.stderr
    assert "0xC001" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("date", ["2026-03-12", "20260230", "20260312-20260301"])
def test_lookup_with_a_bad_date_is_exit_2_and_asks_nothing(
    tmp_path: Path, date: str
) -> None:
    identifiers: list[Dataset] = []

    with find_scp(pending(), identifiers=identifiers) as port:
        config = write_config(tmp_path, port)
        done = run_cli("--config", config, "lookup", "--date", date)

    assert done.returncode == 2
    assert "error: --date" in done.stderr
    assert identifiers == []


def test_lookup_logs_at_debug_hold_no_patient_name_or_id(tmp_path: Path) -> None:
    with find_scp(pending(worklist_item())) as port:
        done = run_cli(
            "--config", write_config(tmp_path, port), "--log-level", "DEBUG",
            "lookup", "--patient-id", PATIENT_ID, "--name", "Zyx*", "--json",
        )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert PATIENT_NAME in done.stdout  # the answer was there to leak
    assert "C-FIND" in done.stderr  # and the log was written at DEBUG
    for value in (PATIENT_ID, PATIENT_NAME, "Zyxwvut", "Quorra", "Zyx*", "19510917"):
        assert value not in done.stderr


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        ([], "the lookup provider knows no worklist entry with this accession"),
        (
            [worklist_item(), worklist_item(step_id="SPS2")],
            "the lookup provider has 2 different entries with this accession number",
        ),
        (
            [worklist_item(), worklist_item(patient_id="PID-OTHER")],
            "the lookup provider has 2 different entries with this accession number",
        ),
    ],
    ids=["none", "two-steps", "two-patients"],
)
def test_from_worklist_without_exactly_one_entry_is_exit_2_and_writes_nothing(
    tmp_path: Path, items: list[Dataset], problem: str
) -> None:
    out = tmp_path / "out"

    with find_scp(pending(*items)) as port:
        done = run_cli(
            "--config", write_config(tmp_path, port), "dicomize",
            sample_photos()[0], "--out", out, "--from-worklist", "ACC0001",
        )  # fmt: skip

    assert done.returncode == 2
    assert problem in done.stderr
    assert not out.exists()


def test_from_worklist_ignores_answers_of_another_accession(tmp_path: Path) -> None:
    # A server that matches loosely may answer more than was asked for.
    out = tmp_path / "out"
    items = [worklist_item(), worklist_item("ACC00011", patient_id="PID-OTHER")]

    with find_scp(pending(*items)) as port:
        done = run_cli(
            "--config", write_config(tmp_path, port), "dicomize",
            sample_photos()[0], "--out", out, "--from-worklist", "ACC0001",
        )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "Filing under the worklist entry" in done.stderr
    assert len(list(out.iterdir())) == 1
