"""Secondary Capture Image objects (PS3.3 A.8.1) from a still and its context."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, SecondaryCaptureImageStorage

from pacsbridge import __version__
from pacsbridge.config import EquipmentSettings
from pacsbridge.context import CaptureContext
from pacsbridge.dicom.charset import specific_character_set
from pacsbridge.dicom.encoding import BuiltObject
from pacsbridge.dicom.order import write_order
from pacsbridge.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacsbridge.media.stills import Still

PRODUCT = "PacsBridge"


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


def build_secondary_capture(
    still: Still,
    context: CaptureContext,
    series: SeriesStamp,
    equipment: EquipmentSettings,
    sop_instance_uid: UID,
    instance_number: int,
) -> BuiltObject:
    """One Secondary Capture Image Storage object, valid for writing and sending."""
    ds = Dataset()
    _patient_and_study(ds, context, series)
    _series_and_equipment(ds, context, series, equipment)
    _image(ds, still, series, instance_number)
    _sop_common(ds, series, sop_instance_uid)
    if context.order is not None:
        write_order(ds, context.order)
    ds.file_meta = _file_meta(ds, still.transfer_syntax)
    charset = specific_character_set(
        str(v.value) for v in ds.iterall() if v.VR in _TEXT_VRS and v.value
    )
    if charset is not None:
        ds.SpecificCharacterSet = charset
    return BuiltObject.of_still(ds, still)


_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})


def _patient_and_study(
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


def _series_and_equipment(
    ds: Dataset,
    context: CaptureContext,
    series: SeriesStamp,
    equipment: EquipmentSettings,
) -> None:
    # General Series (C.7.3.1), General Equipment (C.7.5.1), SC Equipment (C.8.6.1).
    ds.Modality = context.modality
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

    ds.ConversionType = "WSD"  # workstation: the picture arrived as a file
    ds.SecondaryCaptureDeviceManufacturer = PRODUCT
    ds.SecondaryCaptureDeviceManufacturerModelName = PRODUCT
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__


def _image(
    ds: Dataset, still: Still, series: SeriesStamp, instance_number: int
) -> None:
    # General Image (C.7.6.1), SC Image (C.8.6.2), Image Pixel (C.7.6.3).
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = ""
    ds.ImageType = ["ORIGINAL", "SECONDARY"]
    ds.ContentDate = series.date
    ds.ContentTime = series.time
    ds.AcquisitionDate = series.date
    ds.AcquisitionTime = series.time
    ds.AcquisitionDateTime = series.created.strftime("%Y%m%d%H%M%S.%f%z")
    ds.DateOfSecondaryCapture = series.date
    ds.TimeOfSecondaryCapture = series.time
    ds.DigitalImageFormatAcquired = still.source_format
    _lossy_compression(ds, still)

    ds.SamplesPerPixel = still.samples_per_pixel
    ds.PhotometricInterpretation = still.photometric_interpretation
    if still.samples_per_pixel > 1:
        ds.PlanarConfiguration = 0
    ds.Rows = still.rows
    ds.Columns = still.columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if still.icc_profile:
        ds.ICCProfile = still.icc_profile


def _lossy_compression(ds: Dataset, still: Still) -> None:
    # C.7.6.1.1.5: once lossy, always "01", with every compression in order.
    if not still.lossy:
        ds.LossyImageCompression = "00"
        return
    ds.LossyImageCompression = "01"
    if still.lossy_methods:  # Type 3: absent when the codec has no DICOM term
        ds.LossyImageCompressionRatio = [f"{r:.2f}"[:16] for r in still.lossy_ratios]
        ds.LossyImageCompressionMethod = list(still.lossy_methods)


def _sop_common(ds: Dataset, series: SeriesStamp, sop_instance_uid: UID) -> None:
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.InstanceCreationDate = series.date
    ds.InstanceCreationTime = series.time


def _file_meta(ds: Dataset, transfer_syntax: UID) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta
