"""The command line end to end: exit codes, messages, and what reaches the PACS.

The destination here is the embedded demo PACS (a real pynetdicom Storage SCP in
this process); the CLI runs as a separate process, as a user would run it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from PIL import Image
from pydicom.uid import JPEGBaseline8Bit
from pynetdicom import AE, StoragePresentationContexts, evt

from pacsbridge.demo import DemoPacs, sample_photos

PATIENT_NAME = "Zyxwvut^Quorra"
PATIENT_ID = "PID-93817264"
BIRTH_DATE = "19510917"


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[DemoPacs]:
    with DemoPacs(tmp_path / "pacs") as server:
        yield server


def write_config(folder: Path, port: int, extra: str = "") -> Path:
    config = folder / "pacsbridge.toml"
    config.write_text(
        f"""
[local]
data_dir = "data"
[[destinations]]
name = "pacs"
kind = "dicom"
ae_title = "DEMOPACS"
host = "127.0.0.1"
port = {port}
timeout = 5
{extra}
"""
    )
    return config


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pacsbridge", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def patient_args() -> list[str]:
    return [
        "--patient-id", PATIENT_ID, "--patient-name", PATIENT_NAME,
        "--birth-date", BIRTH_DATE, "--sex", "F",
    ]  # fmt: skip


def test_send_stores_every_photo_under_the_patient(
    pacs: DemoPacs, tmp_path: Path
) -> None:
    config = write_config(tmp_path, pacs.port)
    photos = sample_photos()

    done = run_cli("--config", config, "send", *photos, *patient_args())

    assert done.returncode == 0, done.stderr
    assert "3 of 3 objects delivered" in done.stdout
    stored = [pydicom.dcmread(p) for p in pacs.stored]
    assert len(stored) == len(photos)
    assert {ds.PatientID for ds in stored} == {PATIENT_ID}
    assert {str(ds.PatientName) for ds in stored} == {PATIENT_NAME}
    assert len({ds.StudyInstanceUID for ds in stored}) == 1
    assert len({ds.SeriesInstanceUID for ds in stored}) == 1
    assert sorted(int(ds.InstanceNumber) for ds in stored) == [1, 2, 3]


def test_missing_patient_id_is_exit_2_and_sends_nothing(
    pacs: DemoPacs, tmp_path: Path
) -> None:
    config = write_config(tmp_path, pacs.port)

    done = run_cli("--config", config, "send", *sample_photos())

    assert done.returncode == 2
    assert "Patient ID is missing" in done.stderr
    assert pacs.stored == []


def test_bad_input_is_exit_3_naming_every_bad_file_and_sends_nothing(
    pacs: DemoPacs, tmp_path: Path
) -> None:
    config = write_config(tmp_path, pacs.port)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(sample_photos()[0].read_bytes()[:50_000])

    done = run_cli(
        "--config", config, "send", sample_photos()[0], empty, text, truncated,
        tmp_path / "missing.jpg", *patient_args(),
    )  # fmt: skip

    assert done.returncode == 3
    for bad in ("empty.jpg: is empty", "notes.png: is not an image", "cut.jpg:",
                "missing.jpg: cannot be read"):  # fmt: skip
        assert bad in done.stderr
    assert "Nothing of the job was done" in done.stderr
    assert pacs.stored == []


def test_unknown_config_key_is_exit_2_naming_key_and_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, 104, extra="colour = 'blue'")

    done = run_cli("--config", config, "send", *sample_photos(), *patient_args())

    assert done.returncode == 2
    assert str(config) in done.stderr
    assert "destinations[0].colour: unknown key" in done.stderr


def test_unknown_destination_is_exit_2(pacs: DemoPacs, tmp_path: Path) -> None:
    config = write_config(tmp_path, pacs.port)

    done = run_cli(
        "--config", config, "send", *sample_photos(), "--to", "nowhere",
        *patient_args(),
    )  # fmt: skip

    assert done.returncode == 2
    assert "no destination is named 'nowhere' (configured: pacs)" in done.stderr


def test_unreachable_destination_is_exit_1_naming_it(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback has no listener here: the connection is refused.
    config = write_config(tmp_path, 9)

    done = run_cli("--config", config, "send", *sample_photos(), *patient_args())

    assert done.returncode == 1
    assert "destination 'pacs' (DEMOPACS@127.0.0.1:9) could not be reached" in (
        done.stderr
    )
    assert "0 stored" in done.stdout and "3 not sent" in done.stdout
    assert "send the same files again with --to pacs --study-uid 2.25." in done.stderr


def test_echo_reports_the_round_trip(pacs: DemoPacs, tmp_path: Path) -> None:
    config = write_config(tmp_path, pacs.port)

    done = run_cli("--config", config, "echo", "pacs")

    assert done.returncode == 0, done.stderr
    assert f"pacs (DEMOPACS@127.0.0.1:{pacs.port}) answered C-ECHO" in done.stdout


def test_dicomize_writes_one_file_per_photo(tmp_path: Path) -> None:
    out = tmp_path / "out"

    done = run_cli("dicomize", *sample_photos(), "--out", out, *patient_args())

    assert done.returncode == 0, done.stderr
    files = sorted(out.glob("*.dcm"))
    assert len(files) == 3
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.PatientID == PATIENT_ID
        assert path.stem == ds.SOPInstanceUID
        ds.pixel_array  # noqa: B018 - decodes: the pixel data is a readable JPEG


def test_debug_logs_of_a_whole_send_hold_no_patient_data(
    pacs: DemoPacs, tmp_path: Path
) -> None:
    config = write_config(tmp_path, pacs.port)

    done = run_cli(
        "--config", config, "--log-level", "DEBUG", "send", *sample_photos(),
        *patient_args(), "--accession", "ACC-55501",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "DEBUG" in done.stderr  # the logs really were at debug level
    assert "stored 2.25." in done.stderr
    for secret in (PATIENT_ID, "Zyxwvut", "Quorra", BIRTH_DATE, "ACC-55501"):
        assert secret not in done.stderr


def test_the_same_file_twice_is_rejected_and_nothing_sent(
    pacs: DemoPacs, tmp_path: Path
) -> None:
    config = write_config(tmp_path, pacs.port)
    photo = sample_photos()[0]
    again = photo.parent / ".." / photo.parent.name / photo.name

    done = run_cli("--config", config, "send", photo, again, *patient_args())

    assert done.returncode == 3
    assert "is given more than once" in done.stderr
    assert pacs.stored == []


def test_a_destination_named_twice_gets_the_job_once(
    pacs: DemoPacs, tmp_path: Path
) -> None:
    config = write_config(tmp_path, pacs.port)

    done = run_cli(
        "--config", config, "send", sample_photos()[0], "--to", "pacs", "--to", "pacs",
        *patient_args(),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert len(pacs.stored) == 1
    assert "delivered to 1 of 1 destinations" in done.stdout


def test_a_host_that_does_not_resolve_is_exit_1_naming_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, 104)
    config.write_text(config.read_text().replace("127.0.0.1", "no-such-host.invalid"))

    done = run_cli("--config", config, "send", *sample_photos(), *patient_args())

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "(DEMOPACS@no-such-host.invalid:104) could not be reached" in done.stderr


def test_debug_logs_hold_no_exif_text_of_the_photos(
    pacs: DemoPacs, tmp_path: Path
) -> None:
    config = write_config(tmp_path, pacs.port)
    photo = tmp_path / "described.jpg"
    exif = Image.Exif()
    exif[0x010E] = "Wound of Quorra Zyxwvut"  # ImageDescription
    Image.new("RGB", (32, 24), "red").save(photo, exif=exif)

    done = run_cli(
        "--config", config, "--log-level", "DEBUG", "send", photo, *patient_args()
    )

    assert done.returncode == 0, done.stderr
    assert "Quorra" not in done.stderr


def test_ctrl_c_stops_the_job_and_says_what_was_stored(tmp_path: Path) -> None:
    stored: list[str] = []

    def slow(event: Any) -> int:
        stored.append(event.request.AffectedSOPInstanceUID)
        time.sleep(0.5)
        return 0x0000

    ae = AE(ae_title="DEMOPACS")
    for cx in StoragePresentationContexts:
        assert cx.abstract_syntax is not None
        ae.add_supported_context(cx.abstract_syntax, [JPEGBaseline8Bit])
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, slow)]
    )
    assert server is not None
    try:
        config = write_config(tmp_path, server.server_address[1])
        photos = [tmp_path / f"p{i}.jpg" for i in range(20)]
        for i, path in enumerate(photos):
            Image.new("RGB", (32, 24), (i * 10, 0, 0)).save(path)
        process = subprocess.Popen(
            [sys.executable, "-m", "pacsbridge", "--config", str(config), "send",
             *map(str, photos), *patient_args()],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while len(stored) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        ae.shutdown()

    assert process.returncode == 130
    assert "Interrupted: job" in stderr
    assert "Confirmed stored:" in stderr
    assert "the rest was not sent" in stderr
    assert "Traceback" not in stderr
    assert len(stored) < len(photos)


def test_names_that_look_like_markup_are_printed_as_they_are(tmp_path: Path) -> None:
    odd = tmp_path / "ward[" / "red] [b].jpg"  # "ward[/red] [b].jpg" as a path
    odd.parent.mkdir()
    odd.write_bytes(b"")

    done = run_cli("dicomize", odd, "--out", tmp_path / "out", *patient_args())

    assert done.returncode == 3
    assert "ward[/red] [b].jpg: is empty" in done.stderr
