"""Scale-out on a real PostgreSQL: two `pacsbridge worker` processes share the work.

200 small jobs are stored through intake; two worker processes, each with one
worker, deliver them to a stock storescp. Every job arrives once, and no delivery
is worked by both processes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from pacsbridge.config import Settings
from pacsbridge.context import CaptureContext, Patient
from pacsbridge.jobs.intake import Upload, submit
from pacsbridge.jobs.models import AuditEvent
from pacsbridge.jobs.store import JobStore, job_state
from tests.peers import StoreSCP
from tests.postgres import PostgresCluster

JOBS = 200


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


def test_two_worker_processes_deliver_every_job_once(
    postgres: PostgresCluster, tmp_path: Path, storescp_all: StoreSCP
) -> None:
    config = tmp_path / "pacsbridge.toml"
    config.write_text(
        f"""
[local]
data_dir = "{tmp_path / "data"}"
database_url = "{postgres.url}"
[jobs]
workers = 1
poll_seconds = 0.1
[[destinations]]
name = "pacs"
kind = "dicom"
ae_title = "{storescp_all.ae_title}"
host = "127.0.0.1"
port = {storescp_all.port}
"""
    )
    settings = Settings.model_validate(
        {
            "local": {"data_dir": str(tmp_path / "data"), "database_url": postgres.url},
            "destinations": [
                {"name": "pacs", "kind": "dicom", "ae_title": storescp_all.ae_title,
                 "host": "127.0.0.1", "port": storescp_all.port},
            ],
        }
    )  # fmt: skip
    store = JobStore.open(postgres.url, tmp_path / "data")
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (200, 120, 90)).save(photo, quality=90)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for number in range(JOBS):
        saved = uploads / f"{number}.jpg"
        saved.write_bytes(photo.read_bytes())
        patient = Patient(patient_id=f"PBS-{number:04d}")
        submit(store, settings, [Upload("photo.jpg", saved)],
               CaptureContext(patient=patient), None, "tester")  # fmt: skip

    command = [sys.executable, "-m", "pacsbridge", "--config", str(config), "worker"]
    logs = [(tmp_path / f"worker{n}.log").open("w") for n in range(2)]
    workers = [
        subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) for log in logs
    ]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            states = [job_state(job) for job in store.jobs(limit=JOBS + 10)]
            if states.count("delivered") == JOBS:
                break
            assert all(w.poll() is None for w in workers), "a worker died"
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker, log in zip(workers, logs, strict=True):
            worker.wait(timeout=60)
            log.close()

    assert states.count("delivered") == JOBS
    assert len(storescp_all.files()) == JOBS, "every object once"
    with store.session() as s:
        finished = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "delivered")
        ).all()
    by_delivery = {(e.job_id, e.destination) for e in finished}
    assert len(finished) == len(by_delivery) == JOBS, "no delivery worked twice"
    actors = {e.actor.rsplit(":", 1)[0] for e in finished}  # host:pid
    assert len(actors) == 2, "both processes took their share"
    store.engine.dispose()
