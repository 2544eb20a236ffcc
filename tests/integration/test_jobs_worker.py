"""Stored jobs and the worker, against real archives: Orthanc and storescp.

A job is stored by intake, claimed by a worker, and each object's outcome is
recorded as the archive answers. What the archive holds is counted there.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacsbridge.config import Settings
from pacsbridge.context import CaptureContext, Patient
from pacsbridge.demo import sample_photos
from pacsbridge.errors import ConfigError, InputRejected
from pacsbridge.jobs.intake import Upload, remove_orphans, submit
from pacsbridge.jobs.store import JobStore, job_view
from pacsbridge.jobs.worker import Worker
from tests.peers import Orthanc, StoreSCP, free_port

CONTEXT = CaptureContext(
    patient=Patient(patient_id="PBJ-0001", patient_name="Job^Test")
)


def settings_for(data_dir: Path, port: int, ae_title: str, **jobs: object) -> Settings:
    return Settings.model_validate(
        {
            "local": {"data_dir": str(data_dir)},
            "destinations": [
                {
                    "name": "pacs",
                    "kind": "dicom",
                    "ae_title": ae_title,
                    "host": "127.0.0.1",
                    "port": port,
                    "timeout": 10,
                }
            ],
            "jobs": {"retry_base_seconds": 0.01, "retry_max_seconds": 0.02, **jobs},
        }
    )


def uploads(folder: Path, count: int = 2) -> list[Upload]:
    """Copies of the sample photos, as an API would have saved them."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for number, photo in enumerate(sample_photos()[:count]):
        path = folder / f"upload-{number}"
        shutil.copyfile(photo, path)
        saved.append(Upload(f"Wound photo {number}.jpg", path))
    return saved


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    store = JobStore.open("", tmp_path / "data")
    yield store
    store.engine.dispose()


def work_until_idle(worker: Worker, seconds: float = 30) -> None:
    """Work until no delivery is waiting, retries included (they are due within
    milliseconds here)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker.run_once():
            continue
        waiting = [
            d
            for job in worker.store.jobs()
            for d in job.deliveries
            if d.state in ("queued", "retrying", "running")
        ]
        if not waiting:
            return
        time.sleep(0.01)
    raise AssertionError("the worker never ran out of work")


def test_a_stored_job_is_delivered_and_every_object_is_in_the_archive(
    tmp_path: Path, store: JobStore, empty_orthanc: Orthanc
) -> None:
    settings = settings_for(
        tmp_path / "data", empty_orthanc.dicom_port, empty_orthanc.ae_title
    )
    job_id = submit(
        store, settings, uploads(tmp_path / "up", 3), CONTEXT, None, "tester"
    )

    work_until_idle(Worker(store, settings))

    view = job_view(store.job(job_id))
    assert view["state"] == "delivered"
    assert [i["state"] for i in view["items"]] == ["delivered"] * 3
    assert [i["filename"] for i in view["items"]] == [
        f"Wound photo {n}.jpg" for n in range(3)
    ]
    assert view["deliveries"] == [
        {"destination": "pacs", "state": "delivered", "attempts": 1, "error": ""}
    ]
    assert len(empty_orthanc.instances()) == 3
    assert not list((tmp_path / "up").iterdir()), "uploads were moved, not copied"


def test_a_destination_that_is_down_is_retried_until_it_is_up(
    tmp_path: Path, store: JobStore, empty_orthanc: Orthanc
) -> None:
    down = settings_for(tmp_path / "data", free_port(), empty_orthanc.ae_title)
    job_id = submit(store, down, uploads(tmp_path / "up"), CONTEXT, None, "tester")

    Worker(store, down).run_once()
    time.sleep(0.05)  # the retry is due after 5 to 10 ms
    Worker(store, down).run_once()

    [delivery] = job_view(store.job(job_id))["deliveries"]
    assert delivery["state"] == "retrying"
    assert delivery["attempts"] == 2
    assert "refused" in delivery["error"] or "connect" in delivery["error"]
    assert empty_orthanc.instances() == []

    up = settings_for(
        tmp_path / "data", empty_orthanc.dicom_port, empty_orthanc.ae_title
    )
    work_until_idle(Worker(store, up))
    assert job_view(store.job(job_id))["state"] == "delivered"
    assert len(empty_orthanc.instances()) == 2


def test_after_the_last_attempt_a_delivery_stays_failed_until_retried(
    tmp_path: Path, store: JobStore, empty_orthanc: Orthanc
) -> None:
    down = settings_for(
        tmp_path / "data", free_port(), empty_orthanc.ae_title, max_attempts=2
    )
    job_id = submit(store, down, uploads(tmp_path / "up"), CONTEXT, None, "tester")

    work_until_idle(Worker(store, down))
    view = job_view(store.job(job_id))
    assert view["state"] == "failed"
    assert view["deliveries"][0]["attempts"] == 2

    assert store.retry(job_id, "admin") == 1
    up = settings_for(
        tmp_path / "data", empty_orthanc.dicom_port, empty_orthanc.ae_title
    )
    work_until_idle(Worker(store, up))
    assert job_view(store.job(job_id))["state"] == "delivered"


def test_objects_already_stored_are_never_sent_again(
    tmp_path: Path, store: JobStore, storescp_all: StoreSCP
) -> None:
    settings = settings_for(tmp_path / "data", storescp_all.port, storescp_all.ae_title)
    job_id = submit(store, settings, uploads(tmp_path / "up", 3), CONTEXT, None, "t")
    job = store.job(job_id)
    claim = store.claim("earlier-worker", dt.timedelta(seconds=0))
    assert claim is not None
    store.record_object(claim, job.items[0].sop_instance_uid, "stored", 0, "")

    # The earlier worker died: its lease has run out and another takes over.
    work_until_idle(Worker(store, settings))

    assert len(storescp_all.files()) == 2
    view = job_view(store.job(job_id))
    assert view["state"] == "delivered"
    assert view["deliveries"][0]["attempts"] == 2


def test_a_cancelled_job_is_not_sent(
    tmp_path: Path, store: JobStore, storescp_all: StoreSCP
) -> None:
    settings = settings_for(tmp_path / "data", storescp_all.port, storescp_all.ae_title)
    job_id = submit(store, settings, uploads(tmp_path / "up"), CONTEXT, None, "t")

    assert store.cancel(job_id, "admin") == 1
    work_until_idle(Worker(store, settings))

    assert job_view(store.job(job_id))["state"] == "cancelled"
    assert storescp_all.files() == []


def test_a_repeated_idempotency_key_returns_the_first_job(
    tmp_path: Path, store: JobStore
) -> None:
    settings = settings_for(tmp_path / "data", free_port(), "PACS")
    first = submit(
        store, settings, uploads(tmp_path / "a"), CONTEXT, None, "t", "key-1"
    )
    again = submit(
        store, settings, uploads(tmp_path / "b"), CONTEXT, None, "t", "key-1"
    )

    assert again == first
    assert len(store.jobs()) == 1
    assert not list((tmp_path / "b").iterdir()), "the repeat's files are dropped"


def test_a_bad_file_rejects_the_job_by_its_client_name_and_keeps_nothing(
    tmp_path: Path, store: JobStore
) -> None:
    settings = settings_for(tmp_path / "data", free_port(), "PACS")
    files = uploads(tmp_path / "up")
    bad = tmp_path / "up" / "upload-bad"
    bad.write_bytes(b"not a picture at all")
    files.append(Upload("../../etc/notes.jpg", bad))

    with pytest.raises(InputRejected, match=r"^\.\./\.\./etc/notes\.jpg: "):
        submit(store, settings, files, CONTEXT, None, "t")

    assert store.jobs() == []
    assert list((tmp_path / "data" / "jobs").iterdir()) == []
    assert not list((tmp_path / "up").iterdir())


def test_an_unknown_destination_is_refused_before_anything_is_kept(
    tmp_path: Path, store: JobStore
) -> None:
    settings = settings_for(tmp_path / "data", free_port(), "PACS")
    with pytest.raises(ConfigError, match="elsewhere"):
        submit(store, settings, uploads(tmp_path / "up"), CONTEXT, ["elsewhere"], "t")
    assert store.jobs() == []


def test_originals_are_removed_once_delivered_everywhere_after_the_retention(
    tmp_path: Path, store: JobStore, storescp_all: StoreSCP
) -> None:
    settings = settings_for(
        tmp_path / "data", storescp_all.port, storescp_all.ae_title, retention_days=0
    )
    job_id = submit(store, settings, uploads(tmp_path / "up"), CONTEXT, None, "t")
    folder = tmp_path / "data" / store.job(job_id).folder
    worker = Worker(store, settings)
    worker.remove_old_originals()
    assert folder.exists(), "not delivered yet: kept"

    work_until_idle(worker)
    worker.remove_old_originals()

    assert not folder.exists()
    assert store.job(job_id).originals_removed_at is not None


def test_a_job_cancelled_while_it_is_sent_stops_after_the_object_on_the_wire(
    tmp_path: Path,
    store: JobStore,
    storescp_all: StoreSCP,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for(tmp_path / "data", storescp_all.port, storescp_all.ae_title)
    job_id = submit(store, settings, uploads(tmp_path / "up", 3), CONTEXT, None, "t")
    record = store.record_object

    def record_then_cancel(*args: object, **kwargs: object) -> None:
        record(*args, **kwargs)  # type: ignore[arg-type]
        store.cancel(job_id, "admin")  # an admin presses Cancel now

    monkeypatch.setattr(store, "record_object", record_then_cancel)
    Worker(store, settings).run_once()

    view = job_view(store.job(job_id))
    assert view["state"] == "cancelled"
    assert [i["state"] for i in view["items"]].count("delivered") == 0
    assert len(storescp_all.files()) == 1


def test_a_job_folder_without_a_stored_job_is_removed_once_stale(
    tmp_path: Path, store: JobStore
) -> None:
    settings = settings_for(tmp_path / "data", free_port(), "PACS")
    kept = submit(store, settings, uploads(tmp_path / "up"), CONTEXT, None, "t")
    jobs = tmp_path / "data" / "jobs"
    orphan, fresh = jobs / "killed-before-commit", jobs / "intake-under-way"
    for folder in (orphan, fresh):
        (folder / "inputs").mkdir(parents=True)
    os.utime(orphan, (0, 0))
    os.utime(jobs / kept, (0, 0))

    assert remove_orphans(store, tmp_path / "data") == 1

    assert sorted(p.name for p in jobs.iterdir()) == sorted([kept, fresh.name])


def test_a_state_filter_finds_old_jobs_past_the_first_page(store: JobStore) -> None:
    for number in range(25):  # the oldest first
        store.create_job(
            f"job{number:03d}", "t", None, {}, {}, f"jobs/{number}", [], ["pacs"]
        )
        time.sleep(0.001)  # distinct creation times
    store.cancel("job000", "admin")

    [found] = store.jobs(state="cancelled", limit=1)  # reads 10 jobs a page

    assert found.id == "job000"
    assert [j.id for j in store.jobs(limit=2)] == ["job024", "job023"]
