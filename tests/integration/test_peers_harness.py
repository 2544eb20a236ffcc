"""The peer harness itself: each peer starts, answers and behaves as tests expect."""

from __future__ import annotations

import json
import socket
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pynetdicom import AE
from pynetdicom.association import Association

from tests.peers import (
    HOST,
    VERIFICATION,
    Orthanc,
    PeerError,
    StoreSCP,
    dciodvfy,
    free_port,
    missing_tools,
    require_or_skip,
)

CALLING_AE_TITLE = "PACSBRIDGE"
TIMEOUT = 10.0


def _secondary_capture(
    transfer_syntax: UID = ExplicitVRLittleEndian,
) -> Dataset:
    """Return a 4 by 4 grey Secondary Capture that dciodvfy finds no error in."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()

    # Type 2 attributes are present even when empty (PS3.5 7.4.3).
    ds.PatientName = "Harness^Test"
    ds.PatientID = "HARNESS-1"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""

    # An unpaired body part satisfies the General Series Laterality condition.
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.SeriesNumber = 1
    ds.BodyPartExamined = "CHEST"
    ds.Manufacturer = ""
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""

    ds.Rows = 4
    ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(16))
    return ds


def _associate(port: int, called_ae_title: str, ae: AE) -> Association:
    ae.acse_timeout = TIMEOUT
    ae.dimse_timeout = TIMEOUT
    ae.network_timeout = TIMEOUT
    assoc = ae.associate(HOST, port, ae_title=called_ae_title)
    assert assoc.is_established, f"no association with {called_ae_title}"
    return assoc


def _store(ds: Dataset, port: int, called_ae_title: str) -> int:
    """Send ``ds`` in a context of its own transfer syntax; return the status."""
    ae = AE(ae_title=CALLING_AE_TITLE)
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = _associate(port, called_ae_title, ae)
    try:
        status = assoc.send_c_store(ds)
    finally:
        assoc.release()
    return int(status.Status)


def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def test_free_port_can_be_bound() -> None:
    port = free_port()

    with socket.socket() as sock:
        sock.bind(("", port))

    assert 1024 <= port <= 65535


def test_missing_tools_names_only_the_absent_ones() -> None:
    assert missing_tools(["sh", "no-such-peer-binary"]) == ["no-such-peer-binary"]


def test_orthanc_answers_c_echo(orthanc: Orthanc) -> None:
    ae = AE(ae_title=CALLING_AE_TITLE)
    ae.add_requested_context(VERIFICATION)
    assoc = _associate(orthanc.dicom_port, orthanc.ae_title, ae)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()

    assert status.Status == 0x0000


def test_orthanc_stores_an_instance_sent_by_c_store(empty_orthanc: Orthanc) -> None:
    ds = _secondary_capture()

    status = _store(ds, empty_orthanc.dicom_port, empty_orthanc.ae_title)

    assert status == 0x0000
    [instance_id] = empty_orthanc.instances()
    stored = dcmread(BytesIO(empty_orthanc.instance_file(instance_id)))
    assert stored.SOPInstanceUID == ds.SOPInstanceUID
    assert len(empty_orthanc.patients()) == 1


def test_orthanc_clear_forgets_instances_modalities_and_worklists(
    orthanc: Orthanc, tmp_path: Path
) -> None:
    orthanc.upload(_save(_secondary_capture(), tmp_path / "sc.dcm").read_bytes())
    modality = {"AET": "SENDER", "Host": HOST, "Port": 104}
    orthanc.request("PUT", "/modalities/sender", json.dumps(modality).encode())
    (orthanc.worklist_dir / "item.wl").write_bytes(b"")

    orthanc.clear()

    assert orthanc.instances() == []
    assert orthanc.patients() == []
    assert orthanc.get_json("/modalities") == []
    assert list(orthanc.worklist_dir.iterdir()) == []


def test_orthanc_loads_the_worklist_and_dicomweb_plugins(orthanc: Orthanc) -> None:
    assert {"worklists", "dicom-web"} <= set(orthanc.plugins())


def test_storescp_all_writes_the_received_secondary_capture(
    storescp_all: StoreSCP,
) -> None:
    ds = _secondary_capture()

    status = _store(ds, storescp_all.port, storescp_all.ae_title)

    assert status == 0x0000
    [path] = storescp_all.files()
    assert dcmread(path).SOPInstanceUID == ds.SOPInstanceUID


def test_storescp_implicit_refuses_explicit_vr(storescp_implicit: StoreSCP) -> None:
    ae = AE(ae_title=CALLING_AE_TITLE)
    for transfer_syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        ae.add_requested_context(SecondaryCaptureImageStorage, transfer_syntax)

    assoc = _associate(storescp_implicit.port, storescp_implicit.ae_title, ae)
    accepted = [cx.transfer_syntax[0] for cx in assoc.accepted_contexts]
    assoc.release()

    assert accepted == [ImplicitVRLittleEndian]


def test_storescp_announces_the_max_pdu_it_was_given(tmp_path: Path) -> None:
    require_or_skip(["storescp"])
    ae = AE(ae_title=CALLING_AE_TITLE)
    ae.add_requested_context(VERIFICATION)

    with StoreSCP(max_pdu=65536, workdir=tmp_path) as scp:
        assoc = _associate(scp.port, scp.ae_title, ae)
        maximum_length = assoc.acceptor.maximum_length
        assoc.release()

    assert maximum_length == 65536


def test_storescp_gets_tcp_nodelay_in_its_environment(tmp_path: Path) -> None:
    require_or_skip(["storescp"])

    with StoreSCP(tcp_nodelay=True, workdir=tmp_path) as scp:
        environ = Path(f"/proc/{scp.pid}/environ").read_bytes().split(b"\0")

    assert b"TCP_NODELAY=1" in environ


def test_storescp_on_a_taken_port_fails_with_its_stderr(tmp_path: Path) -> None:
    require_or_skip(["storescp"])

    # Bound but not listening, so our own probe is refused at once.
    with socket.socket() as sock:
        sock.bind(("", 0))
        scp = StoreSCP(port=sock.getsockname()[1], workdir=tmp_path)

        with pytest.raises(PeerError, match="Address already in use"):
            scp.start()


def test_dciodvfy_finds_no_error_in_a_valid_secondary_capture(
    tmp_path: Path,
) -> None:
    require_or_skip(["dciodvfy"])
    path = _save(_secondary_capture(), tmp_path / "good.dcm")

    assert dciodvfy(path) == []


def test_dciodvfy_reports_a_missing_type_1_attribute(tmp_path: Path) -> None:
    require_or_skip(["dciodvfy"])
    ds = _secondary_capture()
    del ds.ConversionType
    path = _save(ds, tmp_path / "broken.dcm")

    errors = dciodvfy(path)

    assert len(errors) == 1
    assert "Type 1 Required Element=<ConversionType>" in errors[0]


def test_dciodvfy_reports_a_file_that_is_not_dicom(tmp_path: Path) -> None:
    require_or_skip(["dciodvfy"])
    path = tmp_path / "not-dicom.dcm"
    path.write_bytes(b"not a DICOM file\n")

    # What it says depends on how the bytes parse; that it says an error does not.
    assert dciodvfy(path) != []
