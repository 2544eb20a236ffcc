"""Send DICOM files the way pynetdicom's documentation shows: dcmread, send_c_store.

The video benchmark's comparison for memory: each object is read whole into a
pydicom Dataset, which pynetdicom encodes again and cuts into PDUs. It proposes
Video Photographic Image Storage in MPEG-4 AVC/H.264 High Profile / Level 4.1
only, so the objects go as they are.

Usage::

    python pynetdicom_send.py PORT MAX_PDU FILE...

Exits 0 when every file was stored with status 0x0000, else 1.
"""

from __future__ import annotations

import sys

from pydicom import dcmread
from pydicom.uid import MPEG4HP41, VideoPhotographicImageStorage
from pynetdicom import AE

from peers import STORESCP_AE


def send(port: int, max_pdu: int, files: list[str]) -> int:
    """Store ``files`` in the storescp on ``port``; the number that failed."""
    ae = AE(ae_title="PYNETDICOM")
    ae.maximum_pdu_size = max_pdu
    ae.add_requested_context(VideoPhotographicImageStorage, MPEG4HP41)
    assoc = ae.associate("127.0.0.1", port, ae_title=STORESCP_AE)
    if not assoc.is_established:
        print("pynetdicom: the association was not established", file=sys.stderr)
        return len(files)

    failed = 0
    for name in files:
        status = assoc.send_c_store(dcmread(name))
        if status.get("Status") != 0x0000:
            print(f"pynetdicom: {name} not stored: {status}", file=sys.stderr)
            failed += 1
    assoc.release()
    return failed


if __name__ == "__main__":
    port, max_pdu, *names = sys.argv[1:]
    sys.exit(1 if send(int(port), int(max_pdu), names) else 0)
