"""What DCMTK's findscu answers, in the shape of ``pacsbridge lookup --json``, and
``pacsbridge lookup --json`` itself.

The lookup tests ask a server twice, once with findscu and once with
PacsBridge, with the same identifier, and compare. The identifier is turned into
findscu's ``-k`` keys here, and findscu's extracted answers are read here with
plain pydicom, independently of ``pacsbridge.lookup.answers``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Literal

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from tests.findscu import findscu

Model = Literal["worklist", "study"]
Row = dict[str, str]


def findscu_keys(identifier: Dataset) -> list[str]:
    """``-k`` arguments for every element of ``identifier``, sequences included."""
    keys: list[str] = []
    _add_keys(identifier, "", keys)
    return keys


def _add_keys(ds: Dataset, prefix: str, keys: list[str]) -> None:
    for elem in ds:
        path = f"{prefix}({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.VR == "SQ":
            if len(elem.value) == 0:
                keys.append(path)
            for number, item in enumerate(elem.value):
                _add_keys(item, f"{path}[{number}].", keys)
        elif elem.value in (None, ""):
            keys.append(path)
        else:
            keys.append(f"{path}={elem.value}")


def reference_rows(
    port: int, called_ae: str, model: Model, identifier: Dataset, workdir: Path
) -> list[Row]:
    """findscu's answers to ``identifier`` as lookup rows, sorted."""
    answers = findscu(port, called_ae, model, findscu_keys(identifier), workdir=workdir)
    with warnings.catch_warnings():
        # Orthanc's Korean answers keep escape sequences pydicom does not know
        # (tests/PEER_NOTES.md); the comparison shows the damage instead.
        warnings.simplefilter("ignore")
        rows = [_row(ds, model) for ds in answers]
    return sorted_rows(rows)


def sorted_rows(rows: list[Row]) -> list[Row]:
    """Rows in one order: servers answer in no particular one."""
    return sorted(rows, key=lambda row: sorted(row.items()))


def _row(ds: Dataset, model: Model) -> Row:
    if model == "worklist":
        step = _first_item(ds, "ScheduledProcedureStepSequence")
        modality = _text(step, "Modality")
        date = _text(step, "ScheduledProcedureStepStartDate")
        time = _text(step, "ScheduledProcedureStepStartTime")
        description = _text(ds, "RequestedProcedureDescription") or _text(
            step, "ScheduledProcedureStepDescription"
        )
    else:
        modality = _text(ds, "ModalitiesInStudy")
        date = _text(ds, "StudyDate")
        time = _text(ds, "StudyTime")
        description = _text(ds, "StudyDescription")
    return {
        "patient_id": _text(ds, "PatientID"),
        "patient_name": _text(ds, "PatientName"),
        "birth_date": _text(ds, "PatientBirthDate"),
        "sex": _text(ds, "PatientSex"),
        "accession_number": _text(ds, "AccessionNumber"),
        "study_instance_uid": _text(ds, "StudyInstanceUID"),
        "referring_physician": _text(ds, "ReferringPhysicianName"),
        "modality": modality,
        "scheduled_date": date,
        "scheduled_time": time,
        "description": description,
    }


def _first_item(ds: Dataset, keyword: str) -> Dataset:
    items = ds.get(keyword) or []
    return items[0] if len(items) else Dataset()


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if isinstance(value, MultiValue):
        return "\\".join(str(v).strip() for v in value)
    return "" if value is None else str(value).strip()


CALLING_AE = "PBLOOKUP"


def write_lookup_config(
    folder: Path, provider: Model, ae_title: str, port: int, extra: str = ""
) -> Path:
    config = folder / "lookup.toml"
    config.write_text(
        f"""
[local]
ae_title = "{CALLING_AE}"
data_dir = "data"
[lookup]
provider = "{provider}"
ae_title = "{ae_title}"
host = "127.0.0.1"
port = {port}
timeout = 20
{extra}
""",
        encoding="utf-8",
    )
    return config


def run_lookup(config: Path, *args: str) -> list[Row]:
    result = subprocess.run(
        [sys.executable, "-m", "pacsbridge", "--config", str(config), "lookup",
         "--json", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows: list[Row] = json.loads(result.stdout)
    return sorted_rows(rows)
