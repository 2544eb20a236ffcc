"""The quick start's `pacsbridge demo`: its worklist, its PACS, and the job between.

The demo worklist is checked like the real servers are: findscu and
`pacsbridge lookup` must see the same entries.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from pacsbridge.demo import DEMO_ENTRIES, DemoWorklist
from pacsbridge.lookup import LookupQuery
from pacsbridge.lookup.queries import worklist_identifier
from tests.lookup_reference import reference_rows, run_lookup, write_lookup_config
from tests.peers import dciodvfy, require_or_skip


@pytest.fixture
def demo_worklist() -> Iterator[DemoWorklist]:
    with DemoWorklist() as worklist:
        yield worklist


def test_demo_files_the_sample_photos_under_the_first_worklist_entry(
    tmp_path: Path,
) -> None:
    require_or_skip(["dciodvfy"])
    accession, name, patient_id, *_ = DEMO_ENTRIES[0]

    result = subprocess.run(
        [sys.executable, "-m", "pacsbridge", "demo", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "3 of 3 sample photos stored" in result.stdout
    stored = sorted((tmp_path / "demo-pacs").glob("*/*.dcm"))
    assert len(stored) == 3
    for path in stored:
        ds = pydicom.dcmread(path)
        assert (ds.AccessionNumber, ds.PatientID, str(ds.PatientName)) == (
            accession, patient_id, name,
        )  # fmt: skip
        assert ds.RequestAttributesSequence[0].ScheduledProcedureStepID
        assert dciodvfy(path) == []


@pytest.mark.parametrize(
    "query",
    [
        LookupQuery(),
        LookupQuery(patient_name="m*"),
        LookupQuery(patient_name="*Tarou*"),
        LookupQuery(modality="ES"),
        LookupQuery(accession_number="DEMO-A003"),
        LookupQuery(dates=dt.date.today().strftime("%Y%m%d")),
    ],
)
def test_demo_worklist_answers_lookup_as_it_answers_findscu(
    query: LookupQuery, tmp_path: Path, demo_worklist: DemoWorklist
) -> None:
    require_or_skip(["findscu"])
    theirs = reference_rows(
        demo_worklist.port, demo_worklist.ae_title, "worklist",
        worklist_identifier(query), tmp_path / "findscu",
    )  # fmt: skip
    config = write_lookup_config(
        tmp_path, "worklist", demo_worklist.ae_title, demo_worklist.port
    )
    args = [
        arg
        for option, value in (
            ("--name", query.patient_name),
            ("--modality", query.modality),
            ("--accession", query.accession_number),
            ("--date", query.dates),
        )
        if value
        for arg in (option, value)
    ]

    ours = run_lookup(config, *args)

    assert theirs
    assert ours == theirs


def test_demo_worklist_schedules_nothing_for_tomorrow(
    tmp_path: Path, demo_worklist: DemoWorklist
) -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    config = write_lookup_config(
        tmp_path, "worklist", demo_worklist.ae_title, demo_worklist.port
    )

    assert run_lookup(config, "--date", tomorrow.strftime("%Y%m%d")) == []


@pytest.mark.parametrize("json_output", [True, False])
def test_lookup_on_an_ascii_terminal_escapes_names_instead_of_crashing(
    json_output: bool, tmp_path: Path, demo_worklist: DemoWorklist
) -> None:
    config = write_lookup_config(
        tmp_path, "worklist", demo_worklist.ae_title, demo_worklist.port
    )

    result = subprocess.run(
        [sys.executable, "-m", "pacsbridge", "--config", str(config), "lookup",
         "--accession", "DEMO-A003", *(["--json"] if json_output else [])],
        capture_output=True, timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    stdout = result.stdout.decode("ascii")
    if json_output:
        [row] = json.loads(stdout)
        assert row["patient_name"] == DEMO_ENTRIES[2][1]  # escaped, not lost
    else:
        assert "\\u5c71" in stdout  # the first character of the family name
