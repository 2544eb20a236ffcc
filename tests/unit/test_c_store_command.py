"""The C-STORE-RQ command set we pack by hand, read back by pydicom."""

from __future__ import annotations

from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.uid import SecondaryCaptureImageStorage

from pacsbridge.deliver.pdata import c_store_command


def test_c_store_command_reads_back_as_the_standard_says() -> None:
    uid = "2.25.1234567890123"  # odd length: padded with a NUL

    encoded = c_store_command(513, SecondaryCaptureImageStorage, uid)

    cmd = read_dataset(
        DicomBytesIO(encoded), is_implicit_VR=True, is_little_endian=True
    )
    assert cmd.CommandGroupLength == len(encoded) - 12
    assert cmd.AffectedSOPClassUID == SecondaryCaptureImageStorage
    assert cmd.CommandField == 0x0001
    assert cmd.MessageID == 513
    assert cmd.Priority == 0
    assert cmd.CommandDataSetType != 0x0101
    assert cmd.AffectedSOPInstanceUID == uid
    assert len(encoded) % 2 == 0
