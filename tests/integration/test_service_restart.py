"""A job accepted is never lost: `pacsbridge serve` killed with SIGKILL and started
again, at each moment that matters, and a destination that goes down and up.

After a restart every accepted job is delivered, Orthanc holds exactly one
instance per object, and an upload cut short leaves neither a job nor a file.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from tests.integration.test_api import (
    HOST,
    KEY,
    Service,
    archived_uids,
    photo_files,
    submit,
    wait_for,
    wait_until_state,
    write_config,
)
from tests.peers import Orthanc, free_port


def test_a_job_accepted_before_a_kill_is_delivered_after_the_restart(
    tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    service = Service(write_config(tmp_path, {"pacs": free_port()})).start()
    with service.client() as http:
        job_id = submit(http, photo_files(2)).json()["id"]
    service.kill()

    config = write_config(tmp_path, {"pacs": empty_orthanc.dicom_port})
    service = Service(config, service.port).start()
    try:
        with service.client() as http:
            view = wait_until_state(http, job_id, ("delivered",))
    finally:
        assert service.stop() == 0, "SIGTERM stops the service cleanly"
    assert sorted(archived_uids(empty_orthanc)) == sorted(
        item["sop_instance_uid"] for item in view["items"]
    )


def test_a_kill_during_the_association_resends_only_what_was_not_stored(
    tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    config = write_config(tmp_path, {"pacs": empty_orthanc.dicom_port})
    service = Service(config).start()
    count = 60
    with service.client() as http:
        job_id = submit(http, photo_files(count)).json()["id"]

    def some_stored() -> bool:
        stored = empty_orthanc.get_json("/statistics")["CountInstances"]
        return bool(stored >= 3)

    wait_for(some_stored, what="the first instances in Orthanc")
    service.kill()
    stored_at_kill = len(empty_orthanc.instances())
    assert stored_at_kill < count, "the kill came after the whole job: too late"

    service = Service(config, service.port).start()
    try:
        with service.client() as http:
            # The dead worker's lease (5 s) must run out before another resumes.
            view = wait_until_state(http, job_id, ("delivered",), timeout=40)
    finally:
        service.stop()
    uids = archived_uids(empty_orthanc)
    assert len(uids) == count
    assert sorted(uids) == sorted(item["sop_instance_uid"] for item in view["items"])
    assert view["deliveries"][0]["attempts"] == 2


def test_an_upload_cut_by_a_kill_leaves_no_job_and_no_file(tmp_path: Path) -> None:
    service = Service(write_config(tmp_path, {"pacs": free_port()})).start()
    uploads = service.data_dir / "uploads"
    with socket.create_connection((HOST, service.port)) as connection:
        _start_upload(connection, megabytes=200, sent_megabytes=8)
        wait_for(
            lambda: any(
                p.stat().st_size > 0 for p in uploads.rglob("*") if p.is_file()
            ),
            what="the upload's first bytes on disk",
        )
        service.kill()
    assert [p for p in uploads.rglob("*") if p.is_file()], "the kill left a part"

    service = Service(service.config, service.port).start()
    try:
        with service.client() as http:
            assert http.get("/api/jobs").json() == []
    finally:
        service.stop()
    assert [p for p in uploads.rglob("*") if p.is_file()] == []
    assert not (service.data_dir / "jobs").exists() or not list(
        (service.data_dir / "jobs").iterdir()
    )


def test_deliveries_retry_while_the_destination_is_down_and_finish_once_it_is_up(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "bridge", {"pacs": port}, extra="max_attempts = 500"
    )
    service = Service(config).start()
    try:
        with service.client() as http:
            job_ids = [submit(http, photo_files(2)).json()["id"] for _ in range(2)]

            def deliveries() -> list[dict[str, Any]]:
                views = [http.get(f"/api/jobs/{job_id}").json() for job_id in job_ids]
                return [view["deliveries"][0] for view in views]

            wait_for(
                lambda: all(d["attempts"] >= 2 for d in deliveries()),
                what="two attempts at each job",
            )
            first = deliveries()
            assert {d["state"] for d in first} <= {"retrying", "running"}
            assert all("pacs" in d["error"] for d in first)
            wait_for(
                lambda: all(
                    d["attempts"] > f["attempts"]
                    for d, f in zip(deliveries(), first, strict=True)
                ),
                what="more attempts while the destination is down",
            )

            with Orthanc(dicom_port=port, workdir=tmp_path / "orthanc") as orthanc:
                for job_id in job_ids:
                    wait_until_state(http, job_id, ("delivered",))
                assert len(orthanc.instances()) == 4
    finally:
        service.stop()


def _start_upload(
    connection: socket.socket, megabytes: int, sent_megabytes: int
) -> None:
    """Begin a multipart POST of ``megabytes`` and send only ``sent_megabytes``."""
    boundary = "cut-short"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        'filename="long.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    ).encode()
    length = len(head) + megabytes * 1024 * 1024
    request = (
        f"POST /api/jobs HTTP/1.1\r\nHost: {HOST}\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Length: {length}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    ).encode()
    connection.sendall(request + head)
    block = os.urandom(1024 * 1024)
    for _ in range(sent_megabytes):
        connection.sendall(block)
    time.sleep(0.2)  # let the server write what it received
