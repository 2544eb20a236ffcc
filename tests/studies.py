"""Study Root C-FIND test data: a handful of small studies and what to expect.

:func:`make_study_files` writes a few Secondary Capture Image objects (PS3.3
A.8.1), 4 by 4 grey pixels in Explicit VR Little Endian, forming six studies of
five patients whose names need Latin-1, UTF-8 and ISO 2022 IR 87 (Japanese).
Each study's :class:`StudySpec` holds the values a study-level answer should
carry, so a test can compare what a peer returns with what was stored.

UIDs derive from each study's key, so they are the same in every run; dates
count from a ``today`` given when the files are written.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from tests.worklists import JAPANESE_NAME


def _uid(*parts: str) -> str:
    return str(generate_uid(prefix=None, entropy_srcs=["pacsbridge-studies", *parts]))


@dataclass(frozen=True)
class StudySpec:
    """One study as stored, and as a study-level C-FIND answer should show it.

    ``charset`` is the Specific Character Set of its objects ("" for none).
    """

    key: str
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    charset: str
    study_instance_uid: str
    study_date: datetime.date
    study_time: str
    accession_number: str
    referring_physician: str
    study_description: str
    study_id: str
    modality: str
    series_instance_uid: str
    sop_instance_uids: tuple[str, ...]
    files: tuple[Path, ...]

    @property
    def study_da(self) -> str:
        """Study Date as DICOM writes it (DA)."""
        return self.study_date.strftime("%Y%m%d")

    @property
    def number_of_instances(self) -> int:
        """Number of Study Related Instances."""
        return len(self.sop_instance_uids)


@dataclass(frozen=True)
class StudyFiles:
    """The studies written for one day: their folder and what each holds."""

    folder: Path
    today: datetime.date
    specs: tuple[StudySpec, ...]

    @property
    def paths(self) -> list[Path]:
        """Every file of every study."""
        return [path for spec in self.specs for path in spec.files]

    def spec(self, key: str) -> StudySpec:
        """The study called ``key``."""
        [found] = [spec for spec in self.specs if spec.key == key]
        return found


@dataclass(frozen=True)
class _Study:
    key: str
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    charset: str
    study_date: datetime.date | int  # fixed, or days from today
    study_time: str
    accession_number: str
    referring_physician: str
    study_description: str
    modality: str
    instances: int


_STUDIES = (
    _Study("latin1-today", "Weiß^Günther", "PBST-P01", "19580317", "M",
           "ISO_IR 100", 0, "091500", "PBST0001", "Schröder^Anna",
           "Hautfoto Rücken", "XC", 2),
    _Study("cyrillic-yesterday", "Смирнов^Дмитрий", "PBST-P02", "19700704", "M",
           "ISO_IR 192", -1, "143000", "PBST0002", "Иванова^Ольга",
           "Гастроскопия", "ES", 1),
    _Study("japanese-past", JAPANESE_NAME, "PBST-P03", "19450812", "M",
           "\\ISO 2022 IR 87", datetime.date(2024, 1, 15), "100000", "PBST0003",
           "Suzuki^Ichiro", "皮膚写真", "XC", 1),
    _Study("ascii-past", "Smith^John", "PBST-P04", "19660101", "M",
           "", datetime.date(2019, 5, 20), "080000", "PBST0004", "Jones^Mary",
           "Document capture", "OT", 2),
    _Study("ascii-yesterday", "Smith^John", "PBST-P04", "19660101", "M",
           "", -1, "160500", "PBST0005", "Jones^Mary",
           "Wound photo follow-up", "XC", 1),
    _Study("greek-today", "Παπαδοπούλου^Ελένη", "PBST-P05", "19800101", "F",
           "ISO_IR 192", 0, "113000", "", "Γεωργίου^Νίκος",
           "Ενδοσκόπηση", "ES", 1),
)  # fmt: skip


def _instance(study: _Study, spec: StudySpec, number: int) -> Dataset:
    ds = Dataset()
    if study.charset:
        ds.SpecificCharacterSet = study.charset.split("\\")

    # Patient and General Study: Type 2 attributes present even when empty.
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.StudyInstanceUID = spec.study_instance_uid
    ds.StudyDate = spec.study_da
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyID = spec.study_id
    ds.AccessionNumber = study.accession_number
    ds.StudyDescription = study.study_description

    # General Series, SC Equipment, General Image; an unpaired body part
    # satisfies the Laterality condition.
    ds.SeriesInstanceUID = spec.series_instance_uid
    ds.Modality = study.modality
    ds.SeriesNumber = 1
    ds.BodyPartExamined = "CHEST"
    ds.Manufacturer = ""
    ds.ConversionType = "WSD"
    ds.InstanceNumber = number
    ds.PatientOrientation = ""
    ds.ContentDate = spec.study_da
    ds.ContentTime = study.study_time

    _pixels(ds, number)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = spec.sop_instance_uids[number - 1]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _pixels(ds: Dataset, number: int) -> None:
    ds.Rows = 4
    ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes((16 * number + i) % 256 for i in range(16))


def _spec(number: int, study: _Study, folder: Path, today: datetime.date) -> StudySpec:
    if isinstance(study.study_date, datetime.date):
        study_date = study.study_date
    else:
        study_date = today + datetime.timedelta(days=study.study_date)
    uids = tuple(_uid(study.key, str(n)) for n in range(1, study.instances + 1))
    return StudySpec(
        key=study.key,
        patient_name=study.patient_name,
        patient_id=study.patient_id,
        birth_date=study.birth_date,
        sex=study.sex,
        charset=study.charset,
        study_instance_uid=_uid(study.key, "study"),
        study_date=study_date,
        study_time=study.study_time,
        accession_number=study.accession_number,
        referring_physician=study.referring_physician,
        study_description=study.study_description,
        study_id=f"PBS{number}",
        modality=study.modality,
        series_instance_uid=_uid(study.key, "series"),
        sop_instance_uids=uids,
        files=tuple(folder / f"{study.key}-{n}.dcm" for n in range(1, len(uids) + 1)),
    )


def make_study_files(folder: Path, today: datetime.date) -> list[StudySpec]:
    """Write the studies' objects to ``folder``; return what each study holds."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for number, study in enumerate(_STUDIES, start=1):
        spec = _spec(number, study, folder, today)
        for number, path in enumerate(spec.files, start=1):
            _instance(study, spec, number).save_as(path, enforce_file_format=True)
        specs.append(spec)
    return specs
