"""Video Photographic Image objects (PS3.3 A.32.7) from a prepared MPEG-4 file.

The whole MP4 is the Pixel Data (PS3.5 8.2.7, 8.2.10, 8.2.11): one fragment after
an empty Basic Offset Table. Rows, Columns, Number of Frames and the frame timing
come from the stream as probed, never from the container's guesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import HEVCM10P51, HEVCMP51, UID, VideoPhotographicImageStorage

from pacsbridge.config import EquipmentSettings
from pacsbridge.context import CaptureContext
from pacsbridge.dicom.encoding import BuiltObject, FilePixels
from pacsbridge.dicom.modules import SeriesStamp, finish, write_common

# PS3.3 A.32.7.3.1: the Modality of a Video Photographic Image is XC; a video
# from an endoscope is a Video Endoscopic Image (ES), not built here.
VIDEO_MODALITY = "XC"
_FRAME_TIME = Tag(0x0018, 0x1063)  # what the Frame Increment Pointer points at


@dataclass(frozen=True)
class VideoStream:
    """What the object says of its stream: all read from the file to be sent."""

    file: Path
    size: int
    transfer_syntax: UID
    rows: int
    columns: int
    frame_count: int
    frame_rate: Fraction
    source_format: str  # the codec the input arrived in, e.g. "h264", "vp9"
    derived: bool  # transcoded: the pictures are not the camera's own
    identity: tuple[int, int, int] | None = None  # size, mtime_ns, inode checked


def build_video_photographic(
    video: VideoStream,
    context: CaptureContext,
    series: SeriesStamp,
    equipment: EquipmentSettings,
    sop_instance_uid: UID,
    instance_number: int,
) -> BuiltObject:
    """One Video Photographic Image Storage object, its Pixel Data the file."""
    ds = Dataset()
    write_common(ds, context, series, equipment, VIDEO_MODALITY)
    _image(ds, video, series, instance_number)
    _cine(ds, video)
    _pixels(ds, video)
    ds.AcquisitionContextSequence = Sequence()  # Type 2: nothing to say
    ds.AnatomicRegionSequence = Sequence([_anatomic_region()])
    finish(
        ds,
        context,
        series,
        VideoPhotographicImageStorage,
        sop_instance_uid,
        video.transfer_syntax,
    )
    pixels = FilePixels(video.file, video.size, video.transfer_syntax, video.identity)
    return BuiltObject(ds, pixels)


def _image(
    ds: Dataset, video: VideoStream, series: SeriesStamp, instance_number: int
) -> None:
    # General Image (C.7.6.1) and VL Image (C.8.12.1).
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = ""
    ds.ImageType = ["DERIVED" if video.derived else "ORIGINAL", "PRIMARY"]
    ds.ContentDate = series.date
    ds.ContentTime = series.time
    ds.AcquisitionDate = series.date
    ds.AcquisitionTime = series.time
    ds.AcquisitionDateTime = series.created.strftime("%Y%m%d%H%M%S.%f%z")
    # C.7.6.1.1.5: every stream here went through lossy compression.
    ds.LossyImageCompression = "01"
    hevc = video.transfer_syntax in (HEVCMP51, HEVCM10P51)
    ds.LossyImageCompressionMethod = "ISO_23008_2" if hevc else "ISO_14496_10"
    raw = video.rows * video.columns * 3 // 2 * video.frame_count  # 4:2:0, 8-bit
    ds.LossyImageCompressionRatio = f"{raw / max(video.size, 1):.2f}"[:16]


def _cine(ds: Dataset, video: VideoStream) -> None:
    # Cine (C.7.6.5) and Multi-frame (C.7.6.6): frames follow each other at the
    # stream's constant rate (variable rates are made constant before this).
    ds.NumberOfFrames = video.frame_count
    ds.FrameIncrementPointer = _FRAME_TIME
    ds.FrameTime = _decimal(1000 / video.frame_rate)
    ds.CineRate = round(video.frame_rate)
    ds.RecommendedDisplayFrameRate = round(video.frame_rate)


def _pixels(ds: Dataset, video: VideoStream) -> None:
    # Image Pixel (C.7.6.3) as PS3.5 8.2.7 and 8.2.10 require of MPEG-4 AVC and
    # HEVC Main; 8.2.11 stores Main 10's samples in 16 bits.
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    ds.PlanarConfiguration = 0
    ds.Rows = video.rows
    ds.Columns = video.columns
    bits = 10 if video.transfer_syntax == HEVCM10P51 else 8
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0


def _anatomic_region() -> Dataset:
    # PS3.3 C.8.12.1: a multi-frame VL image (not of a specimen) must name its
    # anatomic region. SNOMED CT's "body structure" says no more than we know.
    # TODO: code the region from --body-part once it is a coded choice (issue 9).
    code = Dataset()
    code.CodeValue = "123037004"
    code.CodingSchemeDesignator = "SCT"
    code.CodeMeaning = "Body structure"
    return code


def _decimal(value: Fraction) -> str:
    # DS holds 16 characters: milliseconds to the microsecond are plenty.
    return f"{float(value):.6f}".rstrip("0").rstrip(".")[:16]
