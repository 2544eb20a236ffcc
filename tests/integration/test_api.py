"""The REST API end to end: `pacsbridge serve` as a process, photos to Orthanc.

The service runs as a user would run it, with its own workers and SQLite store;
uploads are real multipart requests, and what arrives is counted in Orthanc.
The upload limits are checked on an in-process server given small limits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from pacsbridge.api import UploadLimits, create_app
from pacsbridge.config import load_settings
from pacsbridge.demo import sample_photos
from pacsbridge.jobs.store import JobStore
from tests.lookup_peers import WorklistSCP
from tests.peers import HOST, Orthanc, free_port

KEY = "test-key-0a1b2c3d4e5f"
PATIENT_ID = "PBAPI-77123"
PATIENT_NAME = "Quorrafield^Ysolde"
BIRTH_DATE = "19480317"
CONTEXT = {
    "patient_id": PATIENT_ID,
    "patient_name": PATIENT_NAME,
    "birth_date": BIRTH_DATE,
    "sex": "F",
    "body_part": "HAND",
    "destinations": ["pacs"],
}


def write_config(
    folder: Path,
    destinations: dict[str, int],
    ae_title: str = "ORTHANC",
    extra: str = "",
) -> Path:
    """A service configuration: each destination a DICOM SCP on 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    text = f"""
[local]
data_dir = "data"
log_level = "INFO"
[api]
keys = ["{KEY}"]
[jobs]
poll_seconds = 0.1
lease_seconds = 5
retry_base_seconds = 0.2
retry_max_seconds = 0.5
workers = 2
{extra}
"""
    for name, port in destinations.items():
        text += f"""
[[destinations]]
name = "{name}"
kind = "dicom"
ae_title = "{ae_title}"
host = "{HOST}"
port = {port}
timeout = 5
"""
    config = folder / "pacsbridge.toml"
    config.write_text(text, encoding="utf-8")
    return config


class Service:
    """`pacsbridge serve` as a child process; its output goes to ``log``."""

    def __init__(self, config: Path, port: int | None = None) -> None:
        self.config = config
        self.port = port or free_port()
        self.log = config.parent / "service.log"
        self.data_dir = config.parent / "data"
        self.url = f"http://{HOST}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Service:
        command = [sys.executable, "-m", "pacsbridge", "--config", str(self.config),
                   "serve", "--host", HOST, "--port", str(self.port)]  # fmt: skip
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/healthz", trust_env=False).is_success:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve did not answer /healthz:\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(10)
        self._process = None

    def stop(self) -> int:
        """SIGTERM, as a supervisor stops it; the exit code."""
        if self._process is None:
            return 0
        self._process.send_signal(signal.SIGTERM)
        try:
            code = self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = self._process.wait()
        self._process = None
        return code

    def client(self, key: str | None = KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(
            base_url=self.url, headers=headers, trust_env=False, timeout=60
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def photo_files(count: int = 3) -> list[tuple[str, tuple[str, bytes, str]]]:
    """``count`` photos as multipart parts, named as a phone would name them."""
    photos = sample_photos()
    return [
        (
            "files",
            (f"IMG_{n:04d}.jpg", photos[n % len(photos)].read_bytes(), "image/jpeg"),
        )
        for n in range(count)
    ]


def submit(
    client: httpx.Client,
    files: list[Any],
    context: dict[str, Any] | None = None,
    **headers: str,
) -> httpx.Response:
    return client.post(
        "/api/jobs",
        files=files,
        data={"context": json.dumps(context or CONTEXT)},
        headers=headers,
    )


def wait_for(
    check: Callable[[], Any], timeout: float = 30, what: str = "the condition"
) -> Any:
    """Poll ``check`` until it answers something true; that answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def wait_until_state(
    client: httpx.Client, job_id: str, states: tuple[str, ...], timeout: float = 30
) -> dict[str, Any]:
    def view() -> dict[str, Any] | None:
        answer: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        return answer if answer["state"] in states else None

    found: dict[str, Any] = wait_for(view, timeout, f"job {job_id} {states}")
    return found


def archived_uids(orthanc: Orthanc) -> list[str]:
    """The SOP Instance UID of every instance Orthanc holds."""
    instances = orthanc.get_json("/instances?expand")
    return [i["MainDicomTags"]["SOPInstanceUID"] for i in instances]


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pacsbridge", "--config", str(config), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, orthanc: Orthanc, wlmscpfs: WorklistSCP
) -> Iterator[Service]:
    """One service for the module: destinations "pacs" (Orthanc) and "down"
    (nothing listens), and the worklist as its lookup provider."""
    lookup = f"""
[lookup]
provider = "worklist"
ae_title = "{wlmscpfs.ae_title}"
host = "{HOST}"
port = {wlmscpfs.port}
"""
    config = write_config(
        tmp_path_factory.mktemp("api"),
        {"pacs": orthanc.dicom_port, "down": free_port()},
        orthanc.ae_title,
        lookup,
    )
    server = Service(config).start()
    yield server
    assert server.stop() == 0, server.log_text()


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with service.client() as http:
        yield http


def test_photos_posted_with_a_key_are_delivered_to_the_archive(
    service: Service, client: httpx.Client, empty_orthanc: Orthanc
) -> None:
    answer = submit(client, photo_files(3))

    assert answer.status_code == 202, answer.text
    view = wait_until_state(client, answer.json()["id"], ("delivered", "failed"))
    assert view["state"] == "delivered"
    assert [item["filename"] for item in view["items"]] == [
        "IMG_0000.jpg", "IMG_0001.jpg", "IMG_0002.jpg"
    ]  # fmt: skip
    assert view["deliveries"] == [
        {"destination": "pacs", "state": "delivered", "attempts": 1, "error": ""}
    ]
    assert view["submitted_by"].startswith("api-key:")
    assert KEY not in json.dumps(view)
    assert sorted(archived_uids(empty_orthanc)) == sorted(
        item["sop_instance_uid"] for item in view["items"]
    )
    [patient] = empty_orthanc.patients()
    tags = empty_orthanc.get_json(f"/patients/{patient}")["MainDicomTags"]
    assert tags["PatientID"] == PATIENT_ID


def test_the_service_logs_hold_no_patient_data(
    service: Service, client: httpx.Client, empty_orthanc: Orthanc
) -> None:
    job_id = submit(client, photo_files(1)).json()["id"]
    wait_until_state(client, job_id, ("delivered",))
    client.get("/api/lookup", params={"name": "Quorrafield*", "patient_id": "PB1"})

    log = service.log_text()
    assert f"job {job_id}" in log
    for value in (PATIENT_ID, PATIENT_NAME, "Quorrafield", BIRTH_DATE, "IMG_0000"):
        assert value not in log


ROUTES = [
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs"),
    ("GET", "/api/jobs/0123456789abcdef"),
    ("POST", "/api/jobs/0123456789abcdef/retry"),
    ("POST", "/api/jobs/0123456789abcdef/cancel"),
    ("GET", "/api/lookup"),
    ("GET", "/api/destinations"),
    ("POST", "/api/destinations/pacs/echo"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize("key", [None, "not-the-key", KEY + "x", KEY[:-1]])
def test_every_route_but_healthz_needs_a_valid_key(
    service: Service, key: str | None
) -> None:
    with service.client(key) as http:
        for method, path in ROUTES:
            answer = http.request(method, path)
            assert answer.status_code == 401, (method, path)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert http.get("/healthz").json() == {"status": "ok"}


def test_a_bad_file_is_named_by_its_client_name_and_nothing_is_stored(
    service: Service, client: httpx.Client
) -> None:
    before = client.get("/api/jobs").json()
    files = [*photo_files(1), ("files", ("Notizen ü.jpg", b"plain text", "image/jpeg"))]

    answer = submit(client, files)

    assert answer.status_code == 422
    [rejected] = answer.json()["detail"]
    assert rejected["file"] == "Notizen ü.jpg"
    assert "image" in rejected["problem"]
    assert client.get("/api/jobs").json() == before
    assert not [p for p in (service.data_dir / "uploads").rglob("*") if p.is_file()]
    job_folders = {p.name for p in (service.data_dir / "jobs").iterdir()}
    assert job_folders == {job["id"] for job in before}


@pytest.mark.parametrize(
    ("context", "status", "message"),
    [
        ({"patient_name": "Doe^Jane"}, 422, "Patient ID is missing"),
        ({"patient_id": "P1", "sex": "X"}, 422, "Sex"),
        ({"patient_id": "P1", "destinations": ["elsewhere"]}, 400, "elsewhere"),
        ({"patient_id": "P1", "colour": "red"}, 422, "colour"),
    ],
)
def test_a_bad_context_is_refused_with_its_reason(
    client: httpx.Client, context: dict[str, Any], status: int, message: str
) -> None:
    answer = submit(client, photo_files(1), context)

    assert answer.status_code == status
    assert message in answer.json()["detail"]


def test_a_repeated_idempotency_key_gives_the_first_job_and_one_copy(
    client: httpx.Client, empty_orthanc: Orthanc
) -> None:
    first = submit(client, photo_files(2), **{"Idempotency-Key": "order-4711"})
    again = submit(client, photo_files(2), **{"Idempotency-Key": "order-4711"})

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    job_id = first.json()["id"]
    ids = [job["id"] for job in client.get("/api/jobs").json()]
    assert ids.count(job_id) == 1
    wait_until_state(client, job_id, ("delivered",))
    assert len(empty_orthanc.instances()) == 2


def test_a_job_to_a_destination_that_is_down_can_be_cancelled_and_retried(
    service: Service, client: httpx.Client
) -> None:
    job_id = submit(client, photo_files(1), {**CONTEXT, "destinations": ["down"]})
    job_id = job_id.json()["id"]

    def retried() -> bool:
        [delivery] = client.get(f"/api/jobs/{job_id}").json()["deliveries"]
        return bool(delivery["state"] == "retrying" and delivery["attempts"] >= 2)

    wait_for(retried, what="a second attempt")
    cancelled = client.post(f"/api/jobs/{job_id}/cancel").json()
    assert (cancelled["state"], cancelled["changed"]) == ("cancelled", 1)
    assert client.get("/api/jobs", params={"state": "cancelled"}).json()[0]["id"] == (
        job_id
    )
    again = client.post(f"/api/jobs/{job_id}/retry").json()
    assert again["changed"] == 1
    assert again["deliveries"][0]["state"] in ("queued", "running", "retrying")
    assert client.post(f"/api/jobs/{job_id}/cancel").json()["changed"] == 1

    shown = run_cli(service.config, "jobs", "show", job_id)
    assert shown.returncode == 0, shown.stderr
    assert f"Job {job_id}: cancelled" in shown.stdout
    assert client.get("/api/jobs/no-such-job").status_code == 404


def test_metrics_count_jobs_deliveries_and_bytes(
    client: httpx.Client, empty_orthanc: Orthanc
) -> None:
    job_id = submit(client, photo_files(1)).json()["id"]
    wait_until_state(client, job_id, ("delivered",))

    answer = client.get("/metrics")

    assert answer.status_code == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }
    assert samples[("pacsbridge_jobs", (("state", "delivered"),))] >= 1
    assert ("pacsbridge_jobs", (("state", "partial"),)) in samples
    delivered = (("destination", "pacs"), ("state", "delivered"))
    assert samples[("pacsbridge_deliveries", delivered)] >= 1
    sent = samples[("pacsbridge_sent_bytes_total", (("destination", "pacs"),))]
    assert sent > 100_000


def test_destinations_are_listed_and_answer_an_echo(client: httpx.Client) -> None:
    listed = client.get("/api/destinations").json()
    assert [d["name"] for d in listed] == ["pacs", "down"]

    assert client.post("/api/destinations/pacs/echo").json()["ok"] is True
    down = client.post("/api/destinations/down/echo").json()
    assert down["ok"] is False
    assert "down" in down["error"]
    assert client.post("/api/destinations/nowhere/echo").status_code == 400


def test_lookup_answers_as_the_command_line_does(
    service: Service, client: httpx.Client
) -> None:
    answer = client.get("/api/lookup", params={"name": "Doe*"})

    assert answer.status_code == 200, answer.text
    ours = run_cli(service.config, "lookup", "--json", "--name", "Doe*")
    assert ours.returncode == 0, ours.stderr
    assert answer.json() == json.loads(ours.stdout)
    assert [row["patient_id"] for row in answer.json()] == ["PBWL-P09"]
    bad_date = client.get("/api/lookup", params={"date": "yesterday-ish"})
    assert bad_date.status_code == 422


def test_the_jobs_command_agrees_with_the_api(
    service: Service, client: httpx.Client
) -> None:
    listed = run_cli(service.config, "jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == client.get("/api/jobs").json()

    job_id = json.loads(listed.stdout)[0]["id"]
    shown = run_cli(service.config, "jobs", "show", job_id, "--json")
    assert json.loads(shown.stdout) == client.get(f"/api/jobs/{job_id}").json()

    unknown = run_cli(service.config, "jobs", "show", "no-such-job")
    assert unknown.returncode == 2
    assert "no job no-such-job" in unknown.stderr


def test_the_openapi_documentation_is_served(service: Service) -> None:
    with service.client(None) as http:
        assert http.get("/api/docs").status_code == 200
        paths = http.get("/api/openapi.json").json()["paths"]
    assert {"/api/jobs", "/api/jobs/{job_id}", "/api/lookup", "/metrics"} <= set(paths)
    assert "multipart/form-data" in paths["/api/jobs"]["post"]["requestBody"]["content"]


# Upload limits, on an in-process server with small ones.

LIMITS = UploadLimits(max_upload_bytes=3_000_000, max_upload_files=4)


@pytest.fixture
def small_limits(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An API with LIMITS on a real socket: its URL and data folder."""
    config = write_config(tmp_path, {"pacs": free_port()})
    settings = load_settings(config)
    store = JobStore.open("", settings.local.data_dir)
    app = create_app(settings, store, limits=LIMITS)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=HOST, port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run)
    thread.start()
    wait_for(lambda: server.started, 10, "the server start")
    yield f"http://{HOST}:{port}", settings.local.data_dir
    server.should_exit = True
    thread.join()
    store.engine.dispose()


def _streamed_body(megabytes: int) -> Iterator[bytes]:
    # No Content-Length: the limit must hold while the body streams.
    yield b'--b0undary\r\nContent-Disposition: form-data; name="files"; '
    yield b'filename="long.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    block = os.urandom(1024 * 1024)
    for _ in range(megabytes):
        yield block


def test_an_upload_over_the_byte_limit_is_refused_and_leaves_no_file(
    small_limits: tuple[str, Path],
) -> None:
    url, data_dir = small_limits
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=url, headers=headers, trust_env=False) as http:
        streamed = http.post(
            "/api/jobs",
            content=_streamed_body(20),
            headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        )
        declared = submit(http, [("files", ("big.jpg", os.urandom(4_000_000)))])

        for answer in (streamed, declared):
            assert answer.status_code == 413
            assert "3000000 bytes" in answer.json()["detail"]
            assert "max_upload_bytes" in answer.json()["detail"]
        assert http.get("/api/jobs").json() == []
    assert [p for p in (data_dir / "uploads").rglob("*") if p.is_file()] == []


def test_more_files_than_the_limit_are_refused_and_leave_no_file(
    small_limits: tuple[str, Path],
) -> None:
    url, data_dir = small_limits
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {KEY}"}, trust_env=False
    ) as http:
        answer = submit(http, photo_files(5))

        assert answer.status_code == 413
        assert "more than 4 files" in answer.json()["detail"]
        assert http.get("/api/jobs").json() == []
    assert [p for p in (data_dir / "uploads").rglob("*") if p.is_file()] == []
