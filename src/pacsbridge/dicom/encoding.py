"""Encoding a built object for the wire and for files, without copying its pixels.

pydicom encodes every attribute but Pixel Data; Pixel Data, always the last element
of our objects, is written here from the still's own buffer. A 4 MB photo is then
never copied on its way to the socket or the file: on a gateway that moves photos
all day, the copies cost more than the network.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID, JPEGBaseline8Bit

from pacsbridge.media.stills import Still, decode_to_uncompressed

Buffer = bytes | memoryview

_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
_ITEM_TAG = b"\xfe\xff\x00\xe0"  # (FFFE,E000)
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), length 0
_UNDEFINED = b"\xff\xff\xff\xff"


@dataclass(frozen=True)
class BuiltObject:
    """A DICOM object: its attributes as a pydicom Dataset and its pixels apart."""

    attributes: Dataset  # every attribute but Pixel Data, with file_meta
    still: Still

    @property
    def sop_instance_uid(self) -> UID:
        return UID(str(self.attributes.SOPInstanceUID))

    @property
    def transfer_syntax(self) -> UID:
        return self.still.transfer_syntax

    def uncompressed(self) -> BuiltObject:
        """The same object with its pixels decoded, for a destination that
        refused the compressed transfer syntax."""
        still = decode_to_uncompressed(self.still)
        attributes = self.attributes.copy()
        attributes.file_meta = FileMetaDataset(self.attributes.file_meta)
        attributes.file_meta.TransferSyntaxUID = still.transfer_syntax
        attributes.PhotometricInterpretation = still.photometric_interpretation
        attributes.SamplesPerPixel = still.samples_per_pixel
        return BuiltObject(attributes, still)

    def encoded(self, transfer_syntax: UID | None = None) -> list[Buffer]:
        """The data set encoded in ``transfer_syntax`` (default: the object's own),
        as buffers to be written one after the other."""
        syntax = transfer_syntax or self.transfer_syntax
        head = DicomBytesIO()
        head.is_little_endian = True
        head.is_implicit_VR = syntax.is_implicit_VR
        write_dataset(head, self.attributes)
        return [head.getvalue(), *_pixel_data_element(self.still, syntax)]

    def dataset(self) -> Dataset:
        """A complete pydicom Dataset, Pixel Data included (copies the pixels)."""
        ds = self.attributes.copy()
        ds.file_meta = self.attributes.file_meta
        if self.still.transfer_syntax == JPEGBaseline8Bit:
            ds.PixelData = encapsulate([self.still.pixel_data], has_bot=False)
            ds["PixelData"].is_undefined_length = True
        else:
            ds.PixelData = self.still.pixel_data
        ds["PixelData"].VR = "OB"
        return ds

    def write(self, path: Path) -> None:
        """Write the object as a DICOM Part 10 file (PS3.10 7.1).

        The file appears whole or not at all: it is written under a temporary
        name and renamed, so a full disk or an interruption leaves no stub.
        """
        meta = DicomBytesIO()
        write_file_meta_info(meta, self.attributes.file_meta, enforce_standard=True)
        partial = path.with_name(f".{path.name}.partial")
        try:
            with partial.open("wb") as fh:
                fh.write(b"\x00" * 128 + b"DICM")
                fh.write(meta.getvalue())
                for part in self.encoded():
                    fh.write(part)
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise


def _pixel_data_element(still: Still, syntax: UID) -> list[Buffer]:
    length = still.pixel_length
    if syntax.is_encapsulated:
        # PS3.5 A.4: undefined length, an empty Basic Offset Table item, then one
        # fragment holding the whole frame, padded to an even length.
        pad = b"\x00" if length % 2 else b""
        fragment = _ITEM_TAG + struct.pack("<I", length + len(pad))
        return [
            _PIXEL_DATA_TAG + b"OB\x00\x00" + _UNDEFINED + _ITEM_TAG + b"\x00" * 4,
            fragment,
            *still.pixel_parts,
            pad + _SEQUENCE_END,
        ]
    # Native pixel data is already even (stills pads it); OB for 8-bit samples.
    value_length = struct.pack("<I", length)
    if syntax.is_implicit_VR:
        return [_PIXEL_DATA_TAG + value_length, *still.pixel_parts]
    return [_PIXEL_DATA_TAG + b"OB\x00\x00" + value_length, *still.pixel_parts]
