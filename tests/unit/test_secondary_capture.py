"""Secondary Capture Image objects: complete, valid, and honest about their pixels."""

from __future__ import annotations

import datetime as dt
import io
import struct
import subprocess
from pathlib import Path

import pytest
from pydicom import config, dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments, parse_basic_offsets
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
)

from pacsbridge.config import EquipmentSettings, ImageSettings
from pacsbridge.context import CaptureContext, Patient
from pacsbridge.dicom.modules import SeriesStamp
from pacsbridge.dicom.secondary_capture import build_secondary_capture
from pacsbridge.dicom.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    new_uid,
)
from pacsbridge.media.stills import Still, load_still
from tests.unit import imagegen as gen
from tests.unit.imagegen import require_tool

PICTURE = gen.gradient(64, 48)
EQUIPMENT = EquipmentSettings(
    institution="General Hospital",
    department="Dermatology",
    station_name="WARD7-TABLET",
    manufacturer="Acme Tablets",
    model="Slate 3",
    serial_number="SN-0042",
    software_version="4.2",
)

# DESIGN.md, "DICOM facts to honour", stills: every attribute of its list.
STILL_ATTRIBUTES = (
    "ImageType",
    "ConversionType",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
    "StudyInstanceUID",
    "StudyID",
    "SeriesDescription",
    "SeriesNumber",
    "SeriesInstanceUID",
    "Modality",
    "InstanceNumber",
    "PatientOrientation",
    "ContentDate",
    "ContentTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "AcquisitionDateTime",
    "DateOfSecondaryCapture",
    "TimeOfSecondaryCapture",
    "Manufacturer",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "StationName",
    "OperatorsName",
    "ManufacturerModelName",
    "DeviceSerialNumber",
    "SoftwareVersions",
    "SecondaryCaptureDeviceManufacturer",
    "SecondaryCaptureDeviceManufacturerModelName",
    "SecondaryCaptureDeviceSoftwareVersions",
    "DigitalImageFormatAcquired",
    "SOPClassUID",
    "SOPInstanceUID",
    "Rows",
    "Columns",
    "PixelData",
)


@pytest.fixture(autouse=True)
def strict_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value we set must be valid for its VR (DESIGN: strict when writing)."""
    monkeypatch.setattr(config.settings, "writing_validation_mode", config.RAISE)


def _context(patient_name: str = "Doe^Jane", **values: str) -> CaptureContext:
    full = {
        "accession_number": "ACC-1001",
        "study_description": "Wound care",
        "series_description": "Left heel",
        "referring_physician": "House^Gregory",
        "body_part": "FOOT",
        "laterality": "L",
        "operator": "Nurse^Ann",
        "study_id": "S1",
        **values,
    }
    return CaptureContext(Patient("PID-77", patient_name, "19800229", "F"), **full)


def _series(new_study: bool = True) -> SeriesStamp:
    created = dt.datetime(2025, 3, 4, 10, 11, 12, 345678, tzinfo=dt.UTC)
    return SeriesStamp(new_uid(), new_uid(), 3, created, new_study)


def _still(tmp_path: Path, kind: str) -> Still:
    if kind == "jpeg":
        path = gen.write(tmp_path / "photo.jpg", gen.jpeg_bytes(PICTURE))
        return load_still(path, ImageSettings())
    path = gen.write(tmp_path / "photo.png", gen.encoded(PICTURE, "PNG"))
    quality = "lossless" if kind == "lossless" else 90
    return load_still(path, ImageSettings.model_validate({"quality": quality}))


def _build(
    still: Still, context: CaptureContext | None = None, new_study: bool = True
) -> Dataset:
    built = build_secondary_capture(
        still, context or _context(), _series(new_study), EQUIPMENT, new_uid(), 5
    )
    return built.dataset()


def _written(tmp_path: Path, still: Still, context: CaptureContext) -> Path:
    path = tmp_path / "object.dcm"
    built = build_secondary_capture(still, context, _series(), EQUIPMENT, new_uid(), 1)
    built.write(path)
    return path


@pytest.mark.parametrize("kind", ["jpeg", "png", "lossless"])
def test_every_attribute_of_the_still_list_is_present(
    tmp_path: Path, kind: str
) -> None:
    ds = _build(_still(tmp_path, kind))

    missing = [k for k in STILL_ATTRIBUTES if k not in ds]
    assert missing == []
    assert list(ds.ImageType) == ["ORIGINAL", "SECONDARY"]
    assert ds.ConversionType == "WSD"
    assert ds.SOPClassUID == SecondaryCaptureImageStorage
    assert ds.SecondaryCaptureDeviceManufacturer == "PacsBridge"
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (8, 8, 7)
    assert (ds.PixelRepresentation, ds.PlanarConfiguration) == (0, 0)
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel) == (48, 64, 3)
    assert ds.InstanceNumber == 5
    assert ds.OperatorsName == "Nurse^Ann"


def test_jpeg_object_is_ybr_full_422_in_jpeg_baseline(tmp_path: Path) -> None:
    ds = _build(_still(tmp_path, "png"))

    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    assert ds.DigitalImageFormatAcquired == "PNG"
    assert ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(ds.LossyImageCompressionRatio) > 1


def test_lossless_object_is_raw_rgb_and_never_lossy(tmp_path: Path) -> None:
    ds = _build(_still(tmp_path, "lossless"))

    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.PhotometricInterpretation == "RGB"
    assert ds.LossyImageCompression == "00"
    assert "LossyImageCompressionMethod" not in ds
    assert ds.PixelData == PICTURE.tobytes()


def test_passed_through_jpeg_keeps_its_icc_profile(tmp_path: Path) -> None:
    profile = gen.swapped_primaries_profile()
    data = gen.jpeg_bytes(PICTURE, icc_profile=profile)
    still = load_still(gen.write(tmp_path / "p.jpg", data), ImageSettings())

    assert _build(still).ICCProfile == profile


def test_non_ascii_name_gets_specific_character_set_utf8(tmp_path: Path) -> None:
    context = _context("Müller^Jörg", study_description="Bläschen")
    path = _written(tmp_path, _still(tmp_path, "png"), context)

    ds = dcmread(path)

    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "Müller^Jörg"
    assert ds.StudyDescription == "Bläschen"


def test_non_ascii_operator_alone_gets_utf8_too(tmp_path: Path) -> None:
    ds = _build(_still(tmp_path, "png"), _context(operator="Šimková^Eva"))

    assert ds.SpecificCharacterSet == "ISO_IR 192"


def test_ascii_text_has_no_specific_character_set(tmp_path: Path) -> None:
    ds = _build(_still(tmp_path, "png"))

    assert "SpecificCharacterSet" not in ds


def test_uids_are_under_the_2_25_root(tmp_path: Path) -> None:
    ds = _build(_still(tmp_path, "png"))

    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        uid = UID(str(ds[keyword].value))
        assert uid.startswith("2.25."), keyword
        assert uid.is_valid, keyword


def test_new_uids_are_valid_and_unique() -> None:
    uids = {new_uid() for _ in range(200)}

    assert len(uids) == 200
    assert all(u.startswith("2.25.") and u.is_valid for u in uids)


def test_file_meta_names_pacsbridge_as_implementation(tmp_path: Path) -> None:
    path = _written(tmp_path, _still(tmp_path, "jpeg"), _context())

    meta = dcmread(path).file_meta

    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert IMPLEMENTATION_CLASS_UID.startswith("2.25.")
    assert IMPLEMENTATION_CLASS_UID.is_valid
    assert len(IMPLEMENTATION_VERSION_NAME) <= 16
    assert meta.MediaStorageSOPClassUID == SecondaryCaptureImageStorage


def test_study_we_begin_has_its_date_and_an_existing_one_has_none(
    tmp_path: Path,
) -> None:
    still = _still(tmp_path, "png")

    begun, existing = _build(still, new_study=True), _build(still, new_study=False)

    assert (begun.StudyDate, begun.StudyTime[:6]) == ("20250304", "101112")
    assert (existing.StudyDate, existing.StudyTime) == ("", "")
    assert existing.ContentDate == "20250304"


def _jpeg_of_parity(tmp_path: Path, odd: bool) -> Still:
    """A passed-through JPEG whose stream has an odd or an even length."""
    data = gen.jpeg_bytes(PICTURE)
    if len(data) % 2 != odd:
        chunk = b"ICC_PROFILE\x00\x01\x01" + gen.swapped_primaries_profile() + b"!"
        data = gen.insert_after_app0(data, gen.app_segment(0xE2, chunk))
    still = load_still(gen.write(tmp_path / "p.jpg", data), ImageSettings())
    assert still.passed_through and len(still.pixel_data) % 2 == odd
    return still


@pytest.mark.parametrize("odd", [False, True], ids=["even", "odd"])
def test_encapsulated_pixel_data_is_one_fragment_after_an_empty_offset_table(
    tmp_path: Path, odd: bool
) -> None:
    still = _jpeg_of_parity(tmp_path, odd)
    path = _written(tmp_path, still, _context())

    ds = dcmread(path)

    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds["PixelData"].is_undefined_length
    stream = still.pixel_data + b"\x00" * (len(still.pixel_data) % 2)
    item = b"\xfe\xff\x00\xe0"
    assert ds.PixelData == (
        item + struct.pack("<I", 0) + item + struct.pack("<I", len(stream)) + stream
    )


def test_dataset_form_holds_the_frame_as_one_fragment(tmp_path: Path) -> None:
    still = _still(tmp_path, "jpeg")
    path = tmp_path / "saved.dcm"

    _build(still).save_as(path, enforce_file_format=True)
    ds = dcmread(path)

    assert ds["PixelData"].is_undefined_length
    buffer = io.BytesIO(ds.PixelData)
    # pydicom's encapsulate() writes the one offset (0); write() leaves it empty.
    assert parse_basic_offsets(buffer) in ([], [0])
    padding = b"\x00" * (len(still.pixel_data) % 2)
    assert list(generate_fragments(buffer)) == [still.pixel_data + padding]


@pytest.mark.parametrize("kind", ["jpeg", "png", "lossless"])
@pytest.mark.parametrize("writer", ["write", "save_as"])
def test_object_passes_dciodvfy(tmp_path: Path, kind: str, writer: str) -> None:
    dciodvfy = require_tool("dciodvfy")
    still = _still(tmp_path, kind)
    context = _context("Müller^Jörg")
    path = tmp_path / f"{kind}.dcm"
    if writer == "write":
        path = _written(tmp_path, still, context)
    else:
        _build(still, context).save_as(path, enforce_file_format=True)

    done = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True)

    report = done.stdout + done.stderr
    assert [line for line in report.splitlines() if line.startswith("Error")] == []
    assert "SCImage" in report  # dciodvfy recognised the IOD it checked
