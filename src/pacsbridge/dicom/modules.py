"""The modules every object we build shares: patient, study, series, equipment.

PS3.3 C.7.1.1 Patient, C.7.2.1 General Study, C.7.3.1 General Series, C.7.5.1
General Equipment and C.12.1 SOP Common, written the same way for Secondary
Capture and Video Photographic objects so that one job's objects agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from pacsbridge.config import EquipmentSettings
from pacsbridge.context import CaptureContext
from pacsbridge.dicom.charset import specific_character_set
from pacsbridge.dicom.order import write_order
from pacsbridge.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

PRODUCT = "PacsBridge"
_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})


@dataclass(frozen=True)
class SeriesStamp:
    """What every object of one job shares: its study, its series and its moment."""

    study_instance_uid: UID
    series_instance_uid: UID
    series_number: int
    created: dt.datetime
    new_study: bool

    @property
    def date(self) -> str:
        return self.created.strftime("%Y%m%d")

    @property
    def time(self) -> str:
        return self.created.strftime("%H%M%S.%f")


def write_common(
    ds: Dataset,
    context: CaptureContext,
    series: SeriesStamp,
    equipment: EquipmentSettings,
    modality: str,
) -> None:
    """Patient, General Study, General Series and General Equipment."""
    patient_and_study(ds, context, series)
    series_and_equipment(ds, context, series, equipment, modality)


def finish(
    ds: Dataset,
    context: CaptureContext,
    series: SeriesStamp,
    sop_class_uid: UID,
    sop_instance_uid: UID,
    transfer_syntax: UID,
) -> None:
    """SOP Common, the order's attributes, the file meta and the character set:
    what comes once every other attribute is written."""
    sop_common(ds, series, sop_class_uid, sop_instance_uid)
    if context.order is not None:
        write_order(ds, context.order)
    ds.file_meta = file_meta(ds, transfer_syntax)
    charset = specific_character_set(
        str(v.value) for v in ds.iterall() if v.VR in _TEXT_VRS and v.value
    )
    if charset is not None:
        ds.SpecificCharacterSet = charset


def patient_and_study(
    ds: Dataset, context: CaptureContext, series: SeriesStamp
) -> None:
    # Patient (C.7.1.1) and General Study (C.7.2.1); Type 2 values stay present
    # even when empty.
    patient = context.patient
    ds.PatientName = patient.patient_name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex

    ds.StudyInstanceUID = series.study_instance_uid
    # An existing study keeps its own date: the one its lookup answer gave, else
    # empty (Type 2) rather than a date of ours that contradicts the archive.
    ds.StudyDate = series.date if series.new_study else context.study_date
    ds.StudyTime = series.time if series.new_study else context.study_time
    ds.ReferringPhysicianName = context.referring_physician
    ds.StudyID = context.study_id
    ds.AccessionNumber = context.accession_number
    if context.study_description:
        ds.StudyDescription = context.study_description


def series_and_equipment(
    ds: Dataset,
    context: CaptureContext,
    series: SeriesStamp,
    equipment: EquipmentSettings,
    modality: str,
) -> None:
    # General Series (C.7.3.1), General Equipment (C.7.5.1).
    ds.Modality = modality
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.SeriesNumber = series.series_number
    ds.SeriesDate = series.date
    ds.SeriesTime = series.time
    if context.series_description:
        ds.SeriesDescription = context.series_description
    if context.body_part:
        ds.BodyPartExamined = context.body_part
    # Laterality is Type 2C for paired body parts; with no body part known we cannot
    # tell, so it is present and empty unless the user gave one.
    ds.Laterality = context.laterality
    if context.operator:
        ds.OperatorsName = context.operator

    ds.Manufacturer = equipment.manufacturer
    for keyword, value in (
        ("InstitutionName", equipment.institution),
        ("InstitutionalDepartmentName", equipment.department),
        ("StationName", equipment.station_name),
        ("ManufacturerModelName", equipment.model),
        ("DeviceSerialNumber", equipment.serial_number),
        ("SoftwareVersions", equipment.software_version),
    ):
        if value:
            setattr(ds, keyword, value)


def sop_common(
    ds: Dataset, series: SeriesStamp, sop_class_uid: UID, sop_instance_uid: UID
) -> None:
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.InstanceCreationDate = series.date
    ds.InstanceCreationTime = series.time


def file_meta(ds: Dataset, transfer_syntax: UID) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta
