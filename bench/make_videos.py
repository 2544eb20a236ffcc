"""Generate the video benchmark's inputs: conforming H.264 MP4s, made by ffmpeg.

Every video is one that PacsBridge sends **as is**, its MP4 the Pixel Data
untouched: H.264 High Profile, Level 4.1, 8-bit 4:2:0 (yuv420p), 1920x1080 at
30 frames/s, an MP4 holding the video track only and no metadata tags (a title or
comment would make PacsBridge remux it). The bit rate, about 40 Mbit/s, is under
Level 4.1's 50 Mbit/s and makes large files quickly.

Encoding 1080p is slow on a small machine, so one short clip is encoded once:
testsrc2 under temporal noise, which keeps the encoder busy at its bit rate, by
libx264 with a 40 Mbit/s VBV (maxrate and buffer within Level 4.1's). One encoder
thread, because x264's rate control with several threads depends on their timing
and would not give the same bytes twice. Every other file is that clip repeated
(``-stream_loop``) and copied into a new MP4 without re-encoding:

- ``set_01.mp4`` ... ``set_10.mp4``: 16 to 24 s each, about 1 GB in all;
- ``big.mp4``: about 1.9 GB (``--big-bytes``), just under PacsBridge's default
  ``video.max_object_size`` of 2,000,000,000 bytes, so it is one object.

Usage::

    .venv/bin/python bench/make_videos.py [--count 10] [--big-bytes 1900000000]
                                          [--seed 7] [--out DIR]

A ``manifest.json`` records the seed, the ffmpeg version, and each file's size
and frame count; files already there with the recorded size are kept, so a second
run costs nothing. ffprobe, not PacsBridge, checks what was made.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
CLIP = "clip.mp4"
BIG = "big.mp4"
# Bump when the videos change, so that sets made by older versions are remade.
GENERATOR_VERSION = 1

WIDTH, HEIGHT, RATE = 1920, 1080, 30
CLIP_SECONDS = 4
# How often the clip repeats in each file of the set, in turn: 52 clips of about
# 19 MB make about 1 GB for 10 files.
SET_LOOPS = (4, 5, 6, 5, 4, 6, 5, 6, 5, 6)
MAX_OBJECT_SIZE = 2_000_000_000  # PacsBridge's default video.max_object_size
MAX_BIT_RATE = 50_000_000  # H.264 Level 4.1 MaxBR (ISO/IEC 14496-10 Table A-1)

_FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
# No tag that names the tool or its version: the same bytes from every run.
_PLAIN_MP4 = ["-map_metadata", "-1", "-fflags", "+bitexact", "-f", "mp4"]
_X264 = [
    "-c:v", "libx264", "-preset", "veryfast", "-threads", "1",
    "-profile:v", "high", "-level:v", "4.1", "-pix_fmt", "yuv420p",
    "-b:v", "36M", "-maxrate", "40M", "-bufsize", "40M", "-flags:v", "+bitexact",
]  # fmt: skip
# What a plain MP4 of ffmpeg's carries besides the pictures; PacsBridge keeps
# these in an as-is file, any other tag would make it remux.
_FORMAT_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder"}
_STREAM_TAGS = {"language", "handler_name", "vendor_id", "encoder"}


@dataclass(frozen=True)
class Made:
    """One file as the manifest records it."""

    loops: int  # how many times the clip is in it; 1 for the clip itself
    size: int
    frames: int


def set_name(index: int) -> str:
    """The file name of video ``index`` (0-based) of the set."""
    return f"set_{index + 1:02d}.mp4"


def ffmpeg_version() -> str:
    """The version of the ffmpeg on the PATH, e.g. ``5.1.6-0+deb12u1``."""
    done = _run(["ffmpeg", "-version"], "ffmpeg -version")
    words = done.splitlines()[0].split() if done else []
    return words[2] if len(words) > 2 else "unknown"


def encode_clip(target: Path, seed: int) -> None:
    """The short clip every video is made of: testsrc2 with noise, in H.264."""
    source = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={RATE}:duration={CLIP_SECONDS}"
    noise = f"noise=alls=12:allf=t+u:all_seed={seed}"
    _write(
        target,
        [*_FFMPEG, "-f", "lavfi", "-i", source, "-vf", noise, "-an", *_X264],
        "encoding the clip",
    )


def repeat_clip(clip: Path, target: Path, loops: int) -> None:
    """``loops`` times ``clip`` in one MP4: its packets copied, not re-encoded."""
    argv = [*_FFMPEG, "-stream_loop", str(loops - 1), "-i", str(clip)]
    _write(target, [*argv, "-map", "0:v", "-c", "copy"], f"writing {target.name}")


def _write(target: Path, argv: list[str], what: str) -> None:
    """Run ffmpeg into a partial file, then give it its name."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        _run([*argv, *_PLAIN_MP4, str(partial)], what)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def check_video(path: Path, frames: int | None = None) -> int:
    """Stop unless ffprobe sees a video PacsBridge will send as is; its frames.

    ``frames``, when given, is how many frames the file must hold.
    """
    about = json.loads(
        _run(
            ["ffprobe", "-v", "error", "-show_format", "-show_streams",
             "-of", "json", str(path)],
            f"ffprobe of {path.name}",
        )
    )  # fmt: skip
    problems = _problems(about)
    found = int(about["streams"][0].get("nb_frames", 0)) if about["streams"] else 0
    if frames is not None and found != frames:
        problems.append(f"{found} frames, not {frames}")
    if problems:
        raise SystemExit(f"{path.name}: {', '.join(problems)}")
    return found


def _problems(about: dict[str, Any]) -> list[str]:
    streams, container = about["streams"], about["format"]
    if len(streams) != 1 or streams[0].get("codec_type") != "video":
        return [f"{len(streams)} streams, not one video stream"]
    video = streams[0]
    expected = {
        "codec_name": "h264",
        "profile": "High",
        "pix_fmt": "yuv420p",
        "width": WIDTH,
        "height": HEIGHT,
        "r_frame_rate": f"{RATE}/1",
        "avg_frame_rate": f"{RATE}/1",
    }
    problems = [
        f"{key} {video.get(key)!r}, not {value!r}"
        for key, value in expected.items()
        if video.get(key) != value
    ]
    if int(video.get("level", 0)) > 41:
        problems.append(f"level {video['level']}, above 4.1")
    if not container.get("format_name", "").startswith("mov,mp4"):
        problems.append(f"container {container.get('format_name')}")
    seconds = float(container.get("duration", 0)) or 1.0
    if int(container["size"]) * 8 / seconds > MAX_BIT_RATE:
        problems.append("bit rate above Level 4.1's 50 Mbit/s")
    tags = set(container.get("tags", {})) - _FORMAT_TAGS
    tags |= set(video.get("tags", {})) - _STREAM_TAGS
    if tags:
        problems.append(f"metadata tags {sorted(tags)}")
    return problems


def _read_manifest(out_dir: Path, seed: int, ffmpeg: str) -> dict[str, Made]:
    """What a previous run made with the same seed, generator and ffmpeg."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    same = (manifest.get("version"), manifest.get("seed"), manifest.get("ffmpeg"))
    if same != (GENERATOR_VERSION, seed, ffmpeg):
        return {}
    return {str(k): Made(**v) for k, v in manifest.get("videos", {}).items()}


def _kept(out_dir: Path, name: str, loops: int, known: dict[str, Made]) -> bool:
    made, path = known.get(name), out_dir / name
    return (
        made is not None
        and made.loops == loops
        and path.is_file()
        and path.stat().st_size == made.size
    )


def build_videos(
    out_dir: Path, count: int, big_bytes: int, seed: int
) -> dict[str, Any]:
    """Make sure ``out_dir`` holds the clip, the set and the big file; the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ffmpeg = ffmpeg_version()
    known = _read_manifest(out_dir, seed, ffmpeg)
    made: dict[str, Made] = {}

    clip = out_dir / CLIP
    if not _kept(out_dir, CLIP, 1, known):
        started = time.perf_counter()
        encode_clip(clip, seed)
        print(f"{CLIP} encoded in {time.perf_counter() - started:.1f} s")
        known = {}  # every other file is made of the clip
    made[CLIP] = Made(1, clip.stat().st_size, check_video(clip))

    wanted = {set_name(i): SET_LOOPS[i % len(SET_LOOPS)] for i in range(count)}
    if big_bytes:
        wanted[BIG] = _big_loops(big_bytes, made[CLIP].size)
    for name, loops in wanted.items():
        made[name] = _one_video(out_dir, name, loops, made[CLIP], known)
    _remove_stale(out_dir, set(wanted))

    manifest = {
        "version": GENERATOR_VERSION,
        "seed": seed,
        "ffmpeg": ffmpeg,
        "set": [set_name(i) for i in range(count)],
        "big": BIG if big_bytes else None,
        "videos": {name: asdict(m) for name, m in made.items()},
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _big_loops(big_bytes: int, clip_size: int) -> int:
    loops = max(1, big_bytes // clip_size)
    if loops * clip_size >= MAX_OBJECT_SIZE:
        raise SystemExit(
            f"--big-bytes {big_bytes}: the file would not fit one object of "
            f"{MAX_OBJECT_SIZE} bytes (video.max_object_size)"
        )
    return loops


def _one_video(
    out_dir: Path, name: str, loops: int, clip: Made, known: dict[str, Made]
) -> Made:
    path = out_dir / name
    frames = clip.frames * loops
    if _kept(out_dir, name, loops, known):
        return known[name]
    started = time.perf_counter()
    repeat_clip(out_dir / CLIP, path, loops)
    check_video(path, frames)
    size = path.stat().st_size
    seconds = time.perf_counter() - started
    print(f"{name}: {loops} x the clip, {size / 1e6:.0f} MB, in {seconds:.1f} s")
    if name == BIG and size >= MAX_OBJECT_SIZE:
        raise SystemExit(f"{name} is {size} bytes, too large for one object")
    return Made(loops, size, frames)


def _remove_stale(out_dir: Path, wanted: set[str]) -> None:
    for stale in out_dir.glob("*.mp4"):
        if stale.name != CLIP and stale.name not in wanted:
            stale.unlink()


def _report(manifest: dict[str, Any]) -> None:
    videos = manifest["videos"]
    sizes = [videos[name]["size"] for name in manifest["set"]]
    if sizes:
        print(
            f"set: {len(sizes)} video(s), {sum(sizes) / 1e6:.0f} MB in all, "
            f"{min(sizes) / 1e6:.0f} to {max(sizes) / 1e6:.0f} MB each"
        )
    if manifest["big"]:
        big = videos[manifest["big"]]
        print(f"big: {big['size']} bytes, {big['frames']} frames")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10, help="videos in the set")
    parser.add_argument(
        "--big-bytes",
        type=int,
        default=1_900_000_000,
        help="size of big.mp4, at most (default 1.9e9; 0: no big file)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the noise")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "videos",
        help="folder of the videos (default: bench/videos)",
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.big_bytes < 0:
        parser.error("--big-bytes must not be negative")

    started = time.perf_counter()
    manifest = build_videos(args.out, args.count, args.big_bytes, args.seed)
    _report(manifest)
    print(f"done in {time.perf_counter() - started:.1f} s, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
