"""`send --from-worklist` and `--from-study` end to end: looked up on a real
server, built, stored in Orthanc, and read back from Orthanc.

IHE RAD TF-2x Appendix A is the checklist: patient identity and demographics,
Study Instance UID, accession, referring physician, requested procedure (Study
ID, Study Description, Procedure Code Sequence), the Request Attributes Sequence
with the scheduled step, and the step's modality.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from pacsbridge.demo import sample_photos
from tests.lookup_peers import WorklistSCP
from tests.peers import Orthanc, dciodvfy, require_or_skip
from tests.studies import StudyFiles
from tests.worklists import WorklistFiles


def write_config(
    folder: Path, pacs: Orthanc | None, provider: str, ae: str, port: int
) -> Path:
    destination = ""
    if pacs is not None:
        destination = f"""
[[destinations]]
name = "pacs"
kind = "dicom"
ae_title = "{pacs.ae_title}"
host = "127.0.0.1"
port = {pacs.dicom_port}
timeout = 20
"""
    config = folder / "pacsbridge.toml"
    config.write_text(
        f"""
[local]
data_dir = "data"
{destination}
[lookup]
provider = "{provider}"
ae_title = "{ae}"
host = "127.0.0.1"
port = {port}
timeout = 20
""",
        encoding="utf-8",
    )
    return config


def send(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    photo = sample_photos()[0]
    return subprocess.run(
        [sys.executable, "-m", "pacsbridge", "--config", str(config), "send",
         str(photo), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def stored_objects(pacs: Orthanc) -> list[Dataset]:
    return [
        pydicom.dcmread(io.BytesIO(pacs.instance_file(instance)))
        for instance in pacs.instances()
    ]


@pytest.mark.parametrize(
    "key",
    [
        "latin1-today",
        "greek-tomorrow",
        "cyrillic-today",
        "vietnamese-later",
        "japanese-today",
        "korean-past",
        "chinese-past",
    ],
)
def test_photos_sent_from_a_worklist_entry_carry_it_into_orthanc(
    key: str,
    tmp_path: Path,
    wlmscpfs: WorklistSCP,
    worklist_files: WorklistFiles,
    empty_orthanc: Orthanc,
) -> None:
    entry = worklist_files.entry(key)
    config = write_config(
        tmp_path, empty_orthanc, "worklist", wlmscpfs.ae_title, wlmscpfs.port
    )

    result = send(config, "--from-worklist", entry.accession_number)

    assert result.returncode == 0, result.stderr
    [ds] = stored_objects(empty_orthanc)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == entry.patient_name
    assert ds.PatientID == entry.patient_id
    assert ds.PatientBirthDate == entry.birth_date
    assert ds.PatientSex == entry.sex
    assert ds.StudyInstanceUID == entry.study_instance_uid
    assert ds.AccessionNumber == entry.accession_number
    assert str(ds.ReferringPhysicianName) == entry.referring_physician
    assert ds.StudyID == entry.requested_procedure_id
    assert ds.StudyDescription == entry.requested_procedure_description
    assert ds.Modality == entry.modality
    assert ds.PerformedProcedureStepDescription == entry.sps_description

    [request] = ds.RequestAttributesSequence
    assert request.RequestedProcedureID == entry.requested_procedure_id
    assert request.RequestedProcedureDescription == (
        entry.requested_procedure_description
    )
    assert request.ScheduledProcedureStepID == entry.sps_id
    assert request.ScheduledProcedureStepDescription == entry.sps_description
    assert request.AccessionNumber == entry.accession_number
    assert request.StudyInstanceUID == entry.study_instance_uid
    assert entry.requested_procedure_code is not None
    assert entry.protocol_code is not None
    for codes, expected in (
        (request.RequestedProcedureCodeSequence, entry.requested_procedure_code),
        (ds.ProcedureCodeSequence, entry.requested_procedure_code),
        (request.ScheduledProtocolCodeSequence, entry.protocol_code),
        (ds.PerformedProtocolCodeSequence, entry.protocol_code),
    ):
        [code] = codes
        assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
            expected
        )


def test_an_object_made_from_a_japanese_entry_passes_dciodvfy(
    tmp_path: Path, wlmscpfs: WorklistSCP, worklist_files: WorklistFiles
) -> None:
    require_or_skip(["dciodvfy"])
    entry = worklist_files.entry("japanese-today")
    config = write_config(tmp_path, None, "worklist", wlmscpfs.ae_title,
                          wlmscpfs.port)  # fmt: skip
    out = tmp_path / "out"

    result = subprocess.run(
        [sys.executable, "-m", "pacsbridge", "--config", str(config), "dicomize",
         str(sample_photos()[0]), "--out", str(out), "--from-worklist",
         entry.accession_number, "--body-part", "HAND", "--laterality", "L"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    [path] = out.glob("*.dcm")
    assert dciodvfy(path) == []


def test_typed_options_replace_the_entrys_values_and_say_so(
    tmp_path: Path,
    wlmscpfs: WorklistSCP,
    worklist_files: WorklistFiles,
    empty_orthanc: Orthanc,
) -> None:
    entry = worklist_files.entry("latin1-today")
    config = write_config(
        tmp_path, empty_orthanc, "worklist", wlmscpfs.ae_title, wlmscpfs.port
    )

    result = send(
        config, "--from-worklist", entry.accession_number,
        "--study-description", "Wound, left heel", "--modality", "OT",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "--study-description replaces the worklist entry's Study Description" in (
        result.stderr
    )
    assert "--modality replaces the worklist entry's Modality" in result.stderr
    [ds] = stored_objects(empty_orthanc)
    assert ds.StudyDescription == "Wound, left heel"
    assert ds.Modality == "OT"
    assert str(ds.PatientName) == entry.patient_name


def test_an_unknown_accession_sends_nothing(
    tmp_path: Path, wlmscpfs: WorklistSCP, empty_orthanc: Orthanc
) -> None:
    config = write_config(
        tmp_path, empty_orthanc, "worklist", wlmscpfs.ae_title, wlmscpfs.port
    )

    result = send(config, "--from-worklist", "NO-SUCH-ACC")

    assert result.returncode == 2
    assert "knows no worklist entry with this accession number" in result.stderr
    assert empty_orthanc.instances() == []


def test_photos_added_to_an_existing_study_keep_its_patient_and_date(
    tmp_path: Path,
    orthanc_studies: Orthanc,
    study_files: StudyFiles,
    empty_orthanc: Orthanc,
) -> None:
    spec = next(s for s in study_files.specs if not s.patient_name.isascii())
    config = write_config(
        tmp_path, empty_orthanc, "study", orthanc_studies.ae_title,
        orthanc_studies.dicom_port,
    )  # fmt: skip

    result = send(config, "--from-study", spec.study_instance_uid)

    assert result.returncode == 0, result.stderr
    [ds] = stored_objects(empty_orthanc)
    assert str(ds.PatientName) == spec.patient_name
    assert ds.PatientID == spec.patient_id
    assert ds.StudyInstanceUID == spec.study_instance_uid
    assert ds.AccessionNumber == spec.accession_number
    assert ds.StudyDate == spec.study_da
    assert ds.StudyID == spec.study_id
    assert ds.StudyDescription == spec.study_description
    assert ds.Modality == "XC"  # ours: Modalities in Study describes other series
    assert "RequestAttributesSequence" not in ds
