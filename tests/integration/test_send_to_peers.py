"""`pacsbridge send` against real archives: Orthanc and DCMTK's storescp.

What arrived is read back from the peer and checked: count, patient, geometry after
orientation, content, transfer syntax, and dciodvfy for every kind of input.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pillow_heif
import pydicom
import pytest
from PIL import Image
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

from tests.peers import Orthanc, StoreSCP, dciodvfy, require_or_skip

PATIENT = ["--patient-id", "PB-0001", "--patient-name", "Test^Upright"]


def write_config(folder: Path, ae_title: str, port: int, extra: str = "") -> Path:
    config = folder / "pacsbridge.toml"
    config.write_text(
        f"""
{extra}
[[destinations]]
name = "archive"
kind = "dicom"
ae_title = "{ae_title}"
host = "127.0.0.1"
port = {port}
timeout = 20
"""
    )
    return config


def send(config: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pacsbridge", "--config", str(config), "send",
         *map(str, files), *PATIENT],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


def assert_dciodvfy_clean(path: Path) -> None:
    require_or_skip(["dciodvfy"])
    errors = dciodvfy(path)
    assert errors == [], f"{path.name}: {errors}"


def thumbnail(picture: np.ndarray) -> np.ndarray:
    small = Image.fromarray(picture).convert("RGB").resize((36, 24), Image.BILINEAR)
    return np.asarray(small, dtype=np.int16)


def test_corpus_photos_are_stored_upright_in_orthanc(
    empty_orthanc: Orthanc, corpus_dir: Path, tmp_path: Path
) -> None:
    photos = sorted(corpus_dir.glob("*.jpg"))
    config = write_config(tmp_path, empty_orthanc.ae_title, empty_orthanc.dicom_port)

    done = send(config, *photos)

    assert done.returncode == 0, done.stderr
    instances = empty_orthanc.instances()
    assert len(instances) == len(photos) == 18
    references = {
        "Landscape": thumbnail(np.asarray(Image.open(corpus_dir / "Landscape_1.jpg"))),
        "Portrait": thumbnail(np.asarray(Image.open(corpus_dir / "Portrait_1.jpg"))),
    }
    for instance in instances:
        data = empty_orthanc.instance_file(instance)
        ds = pydicom.dcmread(io.BytesIO(data))
        photo = photos[int(ds.InstanceNumber) - 1]
        kind = photo.stem.split("_")[0]
        assert ds.PatientID == "PB-0001"
        if kind == "Landscape":
            assert (ds.Columns, ds.Rows) == (1800, 1200), photo.name
        else:
            assert (ds.Columns, ds.Rows) == (1200, 1800), photo.name
        # Upright means the same picture as the orientation-1 photo, not only the
        # right shape: a 180-degree turn or a mirror image has the same shape.
        # pydicom returns JPEG YCbCr decoded to RGB.
        difference = np.abs(thumbnail(ds.pixel_array) - references[kind]).mean()
        assert difference < 8, f"{photo.name} is not upright ({difference:.1f})"
        saved = tmp_path / f"{photo.stem}.dcm"
        saved.write_bytes(data)
        assert_dciodvfy_clean(saved)


def test_jpeg_is_sent_as_jpeg_baseline_to_a_peer_that_accepts_it(
    storescp_all: StoreSCP, corpus_dir: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, storescp_all.ae_title, storescp_all.port)
    photo = corpus_dir / "Landscape_1.jpg"

    done = send(config, photo)

    assert done.returncode == 0, done.stderr
    (received,) = storescp_all.files()
    ds = pydicom.dcmread(received)
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    assert ds.LossyImageCompression == "01"
    assert_dciodvfy_clean(received)


def test_jpeg_is_sent_decoded_to_a_peer_that_refuses_jpeg(
    storescp_implicit: StoreSCP, corpus_dir: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, storescp_implicit.ae_title, storescp_implicit.port)
    photo = corpus_dir / "Portrait_1.jpg"

    done = send(config, photo)

    assert done.returncode == 0, done.stderr
    (received,) = storescp_implicit.files()
    ds = pydicom.dcmread(received)
    assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert ds.PhotometricInterpretation == "RGB"
    assert (ds.Rows, ds.Columns) == (1800, 1200)
    # Decoded once, never re-encoded: the same pixels as the JPEG itself.
    expected = np.asarray(Image.open(photo).convert("RGB"))
    assert np.abs(ds.pixel_array.astype(int) - expected).max() <= 1
    assert ds.LossyImageCompression == "01"  # the JPEG it came from was lossy
    assert_dciodvfy_clean(received)


def _inputs(folder: Path) -> list[Path]:
    """One small file of every kind of still we take."""
    rng = np.random.default_rng(7)
    rgb = (rng.random((61, 83, 3)) * 255).astype(np.uint8)
    picture = Image.fromarray(rgb)
    made: list[Path] = []

    def save(name: str, image: Image.Image, **options: object) -> None:
        path = folder / name
        image.save(path, **options)
        made.append(path)

    save("baseline.jpg", picture, quality=90)
    save("gray.jpg", picture.convert("L"), quality=90)
    save("progressive.jpg", picture, quality=90, progressive=True)
    save("cmyk.jpg", picture.convert("CMYK"), quality=90)
    save("alpha.png", picture.convert("RGBA"))
    save("palette.png", picture.convert("P"))
    deep = (rng.random((40, 50)) * 65535).astype(np.uint16)
    save("deep.png", Image.fromarray(deep))
    save("scan.tiff", picture)
    save("bitmap.bmp", picture)
    save("photo.webp", picture, quality=80)
    save("first.gif", picture.convert("P"), save_all=True,
         append_images=[picture.rotate(90).convert("P")])  # fmt: skip
    pillow_heif.register_heif_opener()
    save("phone.heic", picture, quality=80)
    return made


@pytest.mark.parametrize("quality", ["90", '"lossless"'])
def test_every_kind_of_still_arrives_dciodvfy_clean(
    storescp_all: StoreSCP, tmp_path: Path, quality: str
) -> None:
    inputs = _inputs(tmp_path)
    config = write_config(
        tmp_path,
        storescp_all.ae_title,
        storescp_all.port,
        extra=f"[image]\nquality = {quality}",
    )

    done = send(config, *inputs)

    assert done.returncode == 0, done.stderr
    received = storescp_all.files()
    assert len(received) == len(inputs)
    syntaxes = set()
    for path in received:
        ds = pydicom.dcmread(path)
        source = inputs[int(ds.InstanceNumber) - 1]
        assert ds.pixel_array.shape[:2] == (ds.Rows, ds.Columns), source.name
        syntaxes.add(ds.file_meta.TransferSyntaxUID)
        assert_dciodvfy_clean(path)
    if quality == '"lossless"':
        assert syntaxes == {ExplicitVRLittleEndian}
    else:
        assert syntaxes == {JPEGBaseline8Bit}


def test_a_peer_that_stops_reading_ends_the_send_at_the_time_out(
    tmp_path: Path,
) -> None:
    require_or_skip(["storescp"])
    rng = np.random.default_rng(3)
    photos = []
    for i in range(4):  # ~9 MB each: more than loopback buffers hold
        path = tmp_path / f"noise{i}.jpg"
        noise = (rng.random((2600, 2600, 3)) * 255).astype(np.uint8)
        Image.fromarray(noise).save(path, quality=97)
        photos.append(path)

    with StoreSCP(workdir=tmp_path / "scp") as scp:
        config = write_config(tmp_path, scp.ae_title, scp.port)
        config.write_text(config.read_text().replace("timeout = 20", "timeout = 2"))
        process = subprocess.Popen(
            [sys.executable, "-m", "pacsbridge", "--config", str(config), "send",
             *map(str, photos), *PATIENT],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not scp.files() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(scp.pid, signal.SIGSTOP)
        try:
            _, stderr = process.communicate(timeout=60)
        finally:
            os.kill(scp.pid, signal.SIGCONT)

    assert process.returncode == 1
    assert "Traceback" not in stderr
    assert "destination 'archive'" in stderr


@pytest.mark.parametrize("command", ["echo", "send"])
def test_ctrl_c_while_a_peer_is_silent_ends_at_once(
    tmp_path: Path, corpus_dir: Path, command: str
) -> None:
    require_or_skip(["storescp"])
    with StoreSCP(workdir=tmp_path / "scp") as scp:
        config = write_config(tmp_path, scp.ae_title, scp.port)
        args = ["archive"] if command == "echo" else [
            str(corpus_dir / "Landscape_1.jpg"), *PATIENT
        ]  # fmt: skip
        os.kill(scp.pid, signal.SIGSTOP)  # accepts the connection, answers nothing
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "pacsbridge", "--config", str(config),
                 command, *args],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(3)  # well inside the association request's 20 s time-out
            process.send_signal(signal.SIGINT)
            started = time.monotonic()
            _, stderr = process.communicate(timeout=15)
        finally:
            os.kill(scp.pid, signal.SIGCONT)

    assert process.returncode == 130
    assert time.monotonic() - started < 10
    assert "Interrupted" in stderr
    assert "Traceback" not in stderr
