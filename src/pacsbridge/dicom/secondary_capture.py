"""Secondary Capture Image objects (PS3.3 A.8.1) from a still and its context."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import UID, SecondaryCaptureImageStorage

from pacsbridge import __version__
from pacsbridge.config import EquipmentSettings
from pacsbridge.context import CaptureContext
from pacsbridge.dicom.encoding import BuiltObject
from pacsbridge.dicom.modules import PRODUCT, SeriesStamp, finish, write_common
from pacsbridge.media.stills import Still


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
    write_common(ds, context, series, equipment, context.modality)
    # SC Equipment (C.8.6.1)
    ds.ConversionType = "WSD"  # workstation: the picture arrived as a file
    ds.SecondaryCaptureDeviceManufacturer = PRODUCT
    ds.SecondaryCaptureDeviceManufacturerModelName = PRODUCT
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__
    _image(ds, still, series, instance_number)
    finish(
        ds,
        context,
        series,
        SecondaryCaptureImageStorage,
        sop_instance_uid,
        still.transfer_syntax,
    )
    return BuiltObject.of_still(ds, still)


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
