"""Videos end to end: planned, built, stored in Orthanc, and read back.

Every kind of input the issue names arrives as a Video Photographic object whose
transfer syntax is what ffprobe says of the stream Orthanc gives back, byte for
byte the stream we prepared, upright, with the frame count ffprobe counts, and
dciodvfy finds no error in it (HEVC objects are checked on a copy relabelled as
H.264: Debian's dciodvfy cannot read the HEVC transfer syntaxes).
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import generate_fragments
from pydicom.uid import HEVCM10P51, HEVCMP51, MPEG4HP41, VideoPhotographicImageStorage

from pacsbridge.config import DicomDestination, Settings, VideoSettings
from pacsbridge.context import CaptureContext, Patient
from pacsbridge.deliver import dimse
from pacsbridge.dicom.objects import JobObjects
from tests.peers import Orthanc, StoreSCP, dciodvfy, require_or_skip
from tests.videogen import ffprobe, videos

PATIENT = Patient(patient_id="PBV-0001", patient_name="Test^Video")

# input: (transfer syntax, (columns, rows) as shown, H.264/HEVC profile by ffprobe)
KINDS = {
    "h264_high_1080p30.mp4": (MPEG4HP41, (1920, 1080), "High"),
    "h264_baseline.mp4": (MPEG4HP41, (640, 360), "High"),
    "h264_1080p60.mp4": (MPEG4HP41, None, "High"),
    "h264_4k30.mp4": (MPEG4HP41, (1920, 1080), "High"),
    "h264_422.mp4": (MPEG4HP41, (640, 360), "High"),
    "hevc_main.mp4": (HEVCMP51, (640, 360), "Main"),
    "hevc_main10_hdr.mp4": (HEVCM10P51, (640, 360), "Main 10"),
    "rotated.mov": (MPEG4HP41, (360, 640), "High"),
    "vfr.mp4": (MPEG4HP41, (320, 240), "High"),
    "pcm_timecode.mov": (MPEG4HP41, (320, 240), "High"),
    "pal_16_15.mp4": (MPEG4HP41, (768, 576), "High"),
}
_LEVELS = {MPEG4HP41: 41, HEVCMP51: 153, HEVCM10P51: 153}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Path]:
    return videos(tmp_path_factory)


def write_config(folder: Path, orthanc: Orthanc, extra: str = "") -> Path:
    """A configuration with Orthanc as destination "archive", data in ``folder``."""
    config = folder / "pacsbridge.toml"
    config.write_text(
        f"""
[local]
data_dir = "{folder / "data"}"
{extra}
[[destinations]]
name = "archive"
kind = "dicom"
ae_title = "{orthanc.ae_title}"
host = "127.0.0.1"
port = {orthanc.dicom_port}
timeout = 60
"""
    )
    return config


def settings_for(tmp_path: Path, orthanc: Orthanc) -> Settings:
    return Settings.model_validate(
        {
            "local": {"data_dir": str(tmp_path / "data")},
            "destinations": [
                {
                    "name": "archive",
                    "kind": "dicom",
                    "ae_title": orthanc.ae_title,
                    "host": "127.0.0.1",
                    "port": orthanc.dicom_port,
                    "timeout": 60,
                }
            ],
        }
    )


def stream_of(ds: pydicom.Dataset) -> bytes:
    fragments = list(generate_fragments(ds.PixelData))
    assert len(fragments) == 2, "an empty offset table, then one fragment"
    assert fragments[0] == b""
    return fragments[1]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_of_video_arrives_true_to_its_stream(
    name: str, inputs: Mapping[str, Path], tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    syntax, shown, profile = KINDS[name]
    settings = settings_for(tmp_path, empty_orthanc)
    destination = settings.destinations[0]
    assert isinstance(destination, DicomDestination)
    context = CaptureContext(patient=PATIENT)

    with JobObjects.plan([inputs[name]], context, settings) as job:
        [obj] = job.planned
        assert obj.video is not None
        prepared = obj.video.file.read_bytes()
        report = dimse.store(destination, settings.local, job)
        written = tmp_path / "object.dcm"
        job.build(obj).write(written)

    assert report.delivered, report.error or report.outcomes
    [instance] = empty_orthanc.instances()
    ds = pydicom.dcmread(io.BytesIO(empty_orthanc.instance_file(instance)))
    assert ds.SOPClassUID == VideoPhotographicImageStorage
    assert ds.file_meta.TransferSyntaxUID == syntax
    stream = stream_of(ds)
    assert stream.rstrip(b"\0") == prepared.rstrip(b"\0")  # byte for byte, less pad
    assert len(ds.PixelData) % 2 == 0

    received = tmp_path / "received.mp4"
    received.write_bytes(stream)
    [video] = [s for s in ffprobe(received)["streams"] if s["codec_type"] == "video"]
    assert video["codec_name"] == ("h264" if syntax == MPEG4HP41 else "hevc")
    assert video["profile"] == profile
    assert int(video["level"]) <= _LEVELS[syntax]
    assert video["pix_fmt"] == ("yuv420p10le" if syntax == HEVCM10P51 else "yuv420p")
    assert not video.get("side_data_list"), "no display matrix: upright as stored"
    assert video.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")
    assert (ds.Columns, ds.Rows) == (video["width"], video["height"])
    if shown is not None:
        assert (ds.Columns, ds.Rows) == shown
    assert ds.NumberOfFrames == int(video["nb_read_frames"])
    assert ds.PhotometricInterpretation == "YBR_PARTIAL_420"
    seconds = ds.NumberOfFrames * float(ds.FrameTime) / 1000
    assert float(video["duration"]) == pytest.approx(seconds, abs=0.05)
    assert_dciodvfy_clean(written, syntax)


def assert_dciodvfy_clean(path: Path, syntax: str) -> None:
    require_or_skip(["dciodvfy"])
    if syntax != MPEG4HP41:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = MPEG4HP41
        ds.BitsAllocated = ds.BitsStored = 8  # as 8.2.7 says for H.264
        ds.HighBit = 7
        ds.LossyImageCompressionMethod = "ISO_14496_10"
        ds.save_as(path, enforce_file_format=True)
    errors = dciodvfy(path)
    assert errors == [], f"{path.name}: {errors}"


def test_a_video_and_photos_go_as_one_series_from_the_command_line(
    inputs: Mapping[str, Path], tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(inputs["still.jpg"].read_bytes())
    config = write_config(tmp_path, empty_orthanc)
    result = subprocess.run(
        [sys.executable, "-m", "pacsbridge", "--config", str(config), "send",
         str(photo), str(inputs["rotated.mov"]), "--patient-id", "PBV-0002"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "rotated.mov: transcoded" in result.stderr
    objects = [
        pydicom.dcmread(io.BytesIO(empty_orthanc.instance_file(i)))
        for i in empty_orthanc.instances()
    ]
    assert sorted(ds.Modality for ds in objects) == ["XC", "XC"]
    assert len({ds.SeriesInstanceUID for ds in objects}) == 1
    assert sorted(int(ds.InstanceNumber) for ds in objects) == [1, 2]
    assert not list((tmp_path / "data" / "work").iterdir()), "work folder emptied"


def test_videos_turned_off_are_refused_and_nothing_is_sent(
    inputs: Mapping[str, Path], tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    config = write_config(tmp_path, empty_orthanc, "[video]\nenabled = false")
    result = subprocess.run(
        [sys.executable, "-m", "pacsbridge", "--config", str(config), "send",
         str(inputs["still.jpg"]), str(inputs["hevc_main.mp4"]),
         "--patient-id", "PBV-0003"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 3
    assert "hevc_main.mp4: is a video, and videos are turned off here" in result.stderr
    assert empty_orthanc.instances() == []


def test_a_video_over_the_object_size_arrives_as_several_playable_instances(
    tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    require_or_skip(["ffmpeg", "ffprobe"])
    long_video = tmp_path / "long.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
         "-i", "testsrc2=size=640x360:rate=30:duration=3,noise=alls=60:allf=t",
         "-c:v", "libx264", "-preset", "ultrafast", "-x264-params", "8x8dct=1",
         "-profile:v", "high", "-pix_fmt", "yuv420p", "-g", "5", "-b:v", "8M",
         "-maxrate", "8M", "-bufsize", "8M", str(long_video)],
        check=True, timeout=120,
    )  # fmt: skip
    assert long_video.stat().st_size > 2 * 1024 * 1024
    settings = settings_for(tmp_path, empty_orthanc).model_copy(
        update={"video": VideoSettings(max_object_size=1024 * 1024)}
    )
    destination = settings.destinations[0]
    assert isinstance(destination, DicomDestination)

    with JobObjects.plan(
        [long_video], CaptureContext(patient=PATIENT), settings
    ) as job:
        report = dimse.store(destination, settings.local, job)
    assert report.delivered, report.error or report.outcomes

    objects = sorted(
        (
            pydicom.dcmread(io.BytesIO(empty_orthanc.instance_file(i)))
            for i in empty_orthanc.instances()
        ),
        key=lambda ds: int(ds.InstanceNumber),
    )
    assert len(objects) >= 3
    assert [int(ds.InstanceNumber) for ds in objects] == list(
        range(1, len(objects) + 1)
    )
    assert len({ds.SeriesInstanceUID for ds in objects}) == 1
    for number, ds in enumerate(objects):
        part = tmp_path / f"part{number}.mp4"
        part.write_bytes(stream_of(ds))
        assert part.stat().st_size <= 1024 * 1024 + 4096
        [video] = ffprobe(part)["streams"]
        assert ds.NumberOfFrames == int(video["nb_read_frames"])
    assert sum(int(ds.NumberOfFrames) for ds in objects) == 90


def test_a_destination_refusing_the_video_syntax_fails_it_and_still_takes_photos(
    inputs: Mapping[str, Path], tmp_path: Path, storescp_implicit: StoreSCP
) -> None:
    settings = Settings.model_validate(
        {
            "local": {"data_dir": str(tmp_path / "data")},
            "destinations": [
                {
                    "name": "old-pacs",
                    "kind": "dicom",
                    "ae_title": storescp_implicit.ae_title,
                    "host": "127.0.0.1",
                    "port": storescp_implicit.port,
                }
            ],
        }
    )
    destination = settings.destinations[0]
    assert isinstance(destination, DicomDestination)
    files = [inputs["still.jpg"], inputs["hevc_main.mp4"]]

    with JobObjects.plan(files, CaptureContext(patient=PATIENT), settings) as job:
        report = dimse.store(destination, settings.local, job)

    photo, video = report.outcomes
    assert photo.state == "stored"
    assert video.state == "failed"
    assert "does not accept Video Photographic Image Storage in HEVC" in video.message
    [stored] = storescp_implicit.files()
    assert pydicom.dcmread(stored).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"


def test_a_send_stopped_by_sigterm_leaves_no_video_behind(
    inputs: Mapping[str, Path], tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    config = write_config(tmp_path, empty_orthanc, '[video]\npreset = "veryslow"')
    send = subprocess.Popen(
        [sys.executable, "-m", "pacsbridge", "--config", str(config), "send",
         str(inputs["h264_4k30.mp4"]), "--patient-id", "PBV-0004"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    work = tmp_path / "data" / "work"
    deadline = time.monotonic() + 60
    while not any(work.glob("job-*/*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the transcode has begun writing
    send.terminate()
    _, stderr = send.communicate(timeout=60)

    assert send.returncode == 143, stderr
    assert list(work.iterdir()) == [], "the work folder went with the job"
    assert empty_orthanc.instances() == []
