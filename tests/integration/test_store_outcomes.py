"""What each answer of a storage SCP becomes: stored, warning, failed, not sent.

The peers are real pynetdicom Storage SCPs on 127.0.0.1 whose answers the tests
choose: a warning status, a failure status, silence until the time-out, a refusal
of the association, a refusal of JPEG, and unusual maximum PDU sizes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom import AE, StoragePresentationContexts, evt

from pacsbridge.config import DicomDestination, Settings
from pacsbridge.context import CaptureContext, Patient
from pacsbridge.deliver import dimse
from pacsbridge.demo import sample_photos
from pacsbridge.dicom.objects import JobObjects
from tests.peers import StoreSCP, require_or_skip

CONTEXT = CaptureContext(Patient("PB-0002", "Outcome^Test"))


@contextmanager
def storage_scp(
    on_store: Callable[[Any], int],
    *,
    transfer_syntaxes: list[str] | None = None,
    max_pdu: int = 16382,
    require_called_aet: bool = False,
    extra: list[Any] | None = None,
) -> Iterator[DicomDestination]:
    ae = AE(ae_title="OUTCOMES")
    ae.maximum_pdu_size = max_pdu
    ae.require_called_aet = require_called_aet
    for cx in StoragePresentationContexts:
        assert cx.abstract_syntax is not None
        ae.add_supported_context(
            cx.abstract_syntax,
            transfer_syntaxes or [JPEGBaseline8Bit, ExplicitVRLittleEndian],
        )
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store), *(extra or [])],
    )
    assert server is not None
    try:
        yield DicomDestination(
            kind="dicom",
            name="scp",
            ae_title="OUTCOMES",
            host="127.0.0.1",
            port=server.server_address[1],
            timeout=2,
        )
    finally:
        ae.shutdown()


def plan() -> JobObjects:
    return JobObjects.plan(sample_photos(), CONTEXT, Settings())


def store(
    destination: DicomDestination, local_max_pdu: int = 16384
) -> dimse.DeliveryReport:
    local = Settings().local.model_copy(update={"max_pdu": local_max_pdu})
    return dimse.store(destination, local, plan())


def test_warning_status_counts_as_stored_and_is_reported() -> None:
    with storage_scp(lambda event: 0xB000) as dest:
        report = store(dest)

    assert report.delivered
    assert report.bytes_sent > sum(p.stat().st_size for p in sample_photos()) // 2
    assert [o.state for o in report.outcomes] == ["warning"] * 3
    assert report.outcomes[0].message == "stored with warning 0xB000"


def test_failure_status_is_reported_with_its_code_and_others_still_go() -> None:
    answers = iter([0x0000, 0xA700, 0x0000])

    with storage_scp(lambda event: next(answers)) as dest:
        report = store(dest)

    assert not report.delivered
    assert [o.state for o in report.outcomes] == ["stored", "failed", "stored"]
    assert report.outcomes[1].status == 0xA700
    assert "refused with status 0xA700" in report.outcomes[1].message


def test_silent_peer_times_out_and_the_rest_is_not_sent() -> None:
    def too_slow(event: Any) -> int:
        time.sleep(4)
        return 0x0000

    with storage_scp(too_slow) as dest:
        report = store(dest)

    assert not report.delivered
    assert [o.state for o in report.outcomes] == ["failed", "not-sent", "not-sent"]
    assert "gave no C-STORE response" in report.error
    assert "'scp' (OUTCOMES@127.0.0.1:" in report.error


def test_rejected_association_is_reported_naming_the_destination() -> None:
    with storage_scp(lambda event: 0x0000, require_called_aet=True) as dest:
        wrong = dest.model_copy(update={"ae_title": "SOMEONE_ELSE"})
        report = store(wrong)

    assert report.count("not-sent") == 3
    assert "destination 'scp' (SOMEONE_ELSE@127.0.0.1:" in report.error
    assert (
        "rejected the association (permanent: its AE title is not the one we called)"
        in (report.error)
    )


def test_peer_refusing_jpeg_gets_the_pixels_uncompressed() -> None:
    received: list[pydicom.Dataset] = []

    def keep(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return 0x0000

    with storage_scp(keep, transfer_syntaxes=[ExplicitVRLittleEndian]) as dest:
        report = store(dest)

    assert report.delivered
    assert {ds.PhotometricInterpretation for ds in received} == {"RGB"}
    for ds in received:
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns, 3)


@pytest.mark.parametrize("peer_max_pdu", [4096, 0])
def test_the_peers_maximum_pdu_is_respected_including_unlimited(
    peer_max_pdu: int,
) -> None:
    pdu_lengths: list[int] = []

    def count(event: Any) -> int:
        return 0x0000

    def watch(event: Any) -> None:
        if event.pdu.pdu_type == 0x04:  # P-DATA-TF
            pdu_lengths.append(event.pdu.pdu_length)

    with storage_scp(
        count, max_pdu=peer_max_pdu, extra=[(evt.EVT_PDU_RECV, watch)]
    ) as dest:
        report = store(dest)

    assert report.delivered
    if peer_max_pdu:
        assert max(pdu_lengths) == peer_max_pdu  # full PDUs, never longer
    else:
        # Unlimited: fragments far larger than any default PDU.
        assert max(pdu_lengths) > 200_000


def test_storescp_with_its_smallest_pdu_takes_every_photo(tmp_path: Path) -> None:
    # DCMTK refuses a P-DATA-TF PDU longer than the maximum it announced.
    require_or_skip(["storescp"])
    with StoreSCP(max_pdu=4096, workdir=tmp_path / "scp") as scp:
        dest = DicomDestination(
            kind="dicom", name="scp", ae_title=scp.ae_title, host="127.0.0.1",
            port=scp.port,
        )  # fmt: skip
        report = store(dest)
        files = scp.files()

    assert report.delivered, report.error
    assert len(files) == 3
