"""Generate the benchmark corpus: deterministic, phone-like baseline JPEG photos.

Every photo is 4032 x 3024 (a 12 MP phone sensor), baseline JPEG at quality 92 with
4:2:0 chroma subsampling and a small EXIF block saying Orientation 1, and weighs 2 to
5 MB. All photos are upright (Orientation 1) on purpose: the benchmark measures
PacsBridge's pass-through path, where the JPEG scans go into the DICOM object
untouched; a rotated photo would add a jpegtran run per file.

The texture is what makes the size realistic: a few large scenes of multi-octave
value noise, gradients and blurred shapes are made once with numpy, then each photo
is a different crop of one of them with its own colour curve, flips, shapes and
sensor-like grain (luma plus a little chroma noise) at its own strength. The same
seed always gives the same bytes, however many worker processes share the work.

Usage::

    .venv/bin/python bench/make_corpus.py [--count 200] [--seed 20240601] [--out DIR]

Files that already exist with the size the manifest recorded are kept, so a second
run with the same seed and count does nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, JpegImagePlugin

WIDTH, HEIGHT = 4032, 3024
MARGIN = 256  # slack around each scene, so crops of one scene differ
QUALITY = 92
SCENES = 3
MIN_BYTES, MAX_BYTES = 2_000_000, 5_000_000
MANIFEST = "manifest.json"
# Bump when the pictures change, so that corpora made by older versions are remade.
GENERATOR_VERSION = 1
NOISE_UNIT = 16  # the stored grain is 16 x N(0, 1); a photo scales it by sigma / 16

# EXIF (CIPA DC-008) tags written into every photo.
_MAKE, _MODEL, _ORIENTATION, _SOFTWARE = 0x010F, 0x0110, 0x0112, 0x0131
_SOF0 = b"\xff\xc0"


@dataclass(frozen=True)
class Textures:
    """What every photo is cut from: large scenes and two planes of grain."""

    scenes: tuple[NDArray[np.uint8], ...]
    luma_grain: NDArray[np.int8]
    chroma_grain: NDArray[np.int8]


# Set in the parent before the worker pool forks, so the workers share it for free.
_textures: Textures | None = None
_out_dir = Path()
_seed = 0


def photo_name(index: int) -> str:
    """The file name of photo ``index`` (0-based), in the order phones number them."""
    return f"IMG_{index + 1:04d}.jpg"


def make_textures(seed: int) -> Textures:
    """The scenes and the grain, made once from ``seed``."""
    rng = np.random.default_rng([seed, 0xC0FFEE])
    scenes = tuple(_scene(rng) for _ in range(SCENES))

    shape = (HEIGHT + MARGIN, WIDTH + MARGIN)
    luma = rng.standard_normal(shape, dtype=np.float32) * NOISE_UNIT
    chroma = rng.standard_normal((*shape, 3), dtype=np.float32) * NOISE_UNIT
    return Textures(
        scenes=scenes,
        luma_grain=np.clip(luma, -127, 127).astype(np.int8),
        chroma_grain=np.clip(chroma, -127, 127).astype(np.int8),
    )


def _scene(rng: np.random.Generator) -> NDArray[np.uint8]:
    """One scene: value noise over a gradient, see-through shapes, softened like a lens.

    It is made at half size and scaled up, which is four times cheaper and still
    leaves the fine detail to the per-photo grain.
    """
    width, height = (WIDTH + MARGIN) // 2, (HEIGHT + MARGIN) // 2
    channels = [_value_noise(rng, width, height) for _ in range(3)]
    across = np.linspace(0.0, rng.uniform(0.2, 0.6), width, dtype=np.float32)
    down = np.linspace(0.0, 0.3, height, dtype=np.float32)
    ramp = across[None, :] + down[:, None]
    pixels = np.stack([c * 0.7 + ramp * rng.uniform(0.3, 1.0) for c in channels], -1)
    pixels -= pixels.min()
    pixels *= 255.0 / max(float(pixels.max()), 1e-6)

    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    objects = image.copy()
    _draw_shapes(objects, rng, count=70, max_radius=160)
    image = Image.blend(image, objects, 0.6).filter(ImageFilter.GaussianBlur(1.2))
    image = image.resize((WIDTH + MARGIN, HEIGHT + MARGIN), Image.Resampling.BICUBIC)
    return np.asarray(image)


def _value_noise(
    rng: np.random.Generator, width: int, height: int
) -> NDArray[np.float32]:
    """Multi-octave value noise in [0, 1]: random grids of rising density, smoothed."""
    total = np.zeros((height, width), dtype=np.float32)
    weight_sum = 0.0
    for octave, cells in enumerate((3, 9, 27, 81, 243, 729)):
        rows = max(2, cells * height // width)
        grid = rng.random((rows, cells), dtype=np.float32)
        layer = Image.fromarray(grid, "F").resize(
            (width, height), Image.Resampling.BICUBIC
        )
        weight = 0.6**octave
        total += weight * np.asarray(layer)
        weight_sum += weight
    return total / weight_sum


def _draw_shapes(
    image: Image.Image, rng: np.random.Generator, count: int, max_radius: int
) -> None:
    """Ellipses, boxes and lines in random colours: the edges JPEG has to spend on."""
    draw = ImageDraw.Draw(image)
    width, height = image.size
    for _ in range(count):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(4, max_radius))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        elif kind == 1:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
        else:
            end = (x + int(rng.integers(-r, r)), y + int(rng.integers(-r, r)))
            draw.line(((x, y), end), fill=colour, width=int(rng.integers(1, 12)))


def render_photo(textures: Textures, seed: int, index: int) -> bytes:
    """Photo ``index`` as JPEG bytes; depends only on ``seed`` and ``index``."""
    rng = np.random.default_rng([seed, index])
    scene = textures.scenes[int(rng.integers(0, len(textures.scenes)))]
    dx, dy = (int(v) for v in rng.integers(0, MARGIN, 2))
    image = Image.fromarray(scene[dy : dy + HEIGHT, dx : dx + WIDTH])
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    image = image.point(_colour_curve(rng))
    _draw_shapes(image, rng, count=int(rng.integers(2, 8)), max_radius=300)

    pixels = _add_grain(np.asarray(image), textures, rng)
    return _encode(Image.fromarray(pixels, "RGB"))


def _colour_curve(rng: np.random.Generator) -> list[int]:
    """A 768-entry lookup table: gain, gamma and offset per channel (white balance)."""
    x = np.arange(256, dtype=np.float32) / 255.0
    curves = []
    for _ in range(3):
        gamma, gain = rng.uniform(0.8, 1.25), rng.uniform(0.8, 1.1)
        offset = rng.uniform(-8, 8)
        curves.append(np.clip(255.0 * gain * x**gamma + offset, 0, 255))
    return [int(v) for v in np.concatenate(curves)]


def _add_grain(
    pixels: NDArray[np.uint8], textures: Textures, rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Sensor-like grain at this photo's own strength; it sets the JPEG size."""
    gx, gy = (int(v) for v in rng.integers(0, MARGIN, 2))
    window = (slice(gy, gy + HEIGHT), slice(gx, gx + WIDTH))
    luma_sigma = int(rng.integers(3, 8))
    chroma_sigma = int(rng.integers(1, 3))

    out = pixels.astype(np.int16)
    luma = textures.luma_grain[window].astype(np.int16) * luma_sigma // NOISE_UNIT
    out += luma[..., None]
    out += textures.chroma_grain[window].astype(np.int16) * chroma_sigma // NOISE_UNIT
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _encode(image: Image.Image) -> bytes:
    """Baseline JPEG, quality 92, 4:2:0, with the EXIF a phone would write."""
    exif = Image.Exif()
    exif[_MAKE] = "PacsBridge"
    exif[_MODEL] = "Bench Phone"
    exif[_SOFTWARE] = "bench/make_corpus.py"
    exif[_ORIENTATION] = 1
    buffer = io.BytesIO()
    image.save(
        buffer,
        "JPEG",
        quality=QUALITY,
        subsampling=2,
        progressive=False,
        optimize=False,
        exif=exif.tobytes(),
    )
    return buffer.getvalue()


def check_photo(data: bytes, name: str) -> None:
    """Stop unless ``data`` is the baseline 4:2:0 12 MP JPEG of 2-5 MB we promise."""
    with Image.open(io.BytesIO(data)) as image:
        sampling = JpegImagePlugin.get_sampling(image)
        size = image.size
    problems = []
    if _SOF0 not in data or image.info.get("progressive"):
        problems.append("not baseline")
    if sampling != 2:
        problems.append(f"subsampling code {sampling}, not 4:2:0")
    if size != (WIDTH, HEIGHT):
        problems.append(f"size {size}")
    if not MIN_BYTES <= len(data) <= MAX_BYTES:
        problems.append(f"{len(data) / 1e6:.2f} MB, outside 2-5 MB")
    if problems:
        raise SystemExit(f"{name}: {', '.join(problems)}")


def _write_one(index: int) -> tuple[str, int]:
    """Worker: render, check and write photo ``index``; its name and size."""
    assert _textures is not None, "textures are made before the pool starts"
    data = render_photo(_textures, _seed, index)
    name = photo_name(index)
    check_photo(data, name)
    partial = _out_dir / f".{name}.partial"
    partial.write_bytes(data)
    partial.replace(_out_dir / name)
    return name, len(data)


def _read_manifest(out_dir: Path, seed: int) -> dict[str, int]:
    """Sizes of the photos a previous run made with the same seed and generator."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if manifest.get("seed") != seed or manifest.get("version") != GENERATOR_VERSION:
        return {}
    sizes = manifest.get("sizes", {})
    return {str(k): int(v) for k, v in sizes.items()}


def _kept(out_dir: Path, name: str, size: int | None) -> bool:
    path = out_dir / name
    return size is not None and path.is_file() and path.stat().st_size == size


def build_corpus(out_dir: Path, count: int, seed: int, jobs: int) -> dict[str, int]:
    """Make sure ``out_dir`` holds exactly photos 0..count-1; their sizes by name."""
    global _textures, _out_dir, _seed
    out_dir.mkdir(parents=True, exist_ok=True)
    known = _read_manifest(out_dir, seed)
    names = [photo_name(i) for i in range(count)]
    missing = [i for i, n in enumerate(names) if not _kept(out_dir, n, known.get(n))]
    sizes = {n: known[n] for n in names if n in known}

    for stale in set(p.name for p in out_dir.glob("IMG_*.jpg")) - set(names):
        (out_dir / stale).unlink()
    if missing:
        started = time.perf_counter()
        _textures, _out_dir, _seed = make_textures(seed), out_dir, seed
        print(f"textures made in {time.perf_counter() - started:.1f} s")
        context = multiprocessing.get_context("fork")
        with context.Pool(max(1, min(jobs, len(missing)))) as pool:
            for name, size in pool.imap_unordered(_write_one, missing, chunksize=2):
                sizes[name] = size
        _textures = None

    manifest = {
        "version": GENERATOR_VERSION,
        "seed": seed,
        "count": count,
        "sizes": {n: sizes[n] for n in names},
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(missing)} photos made, {count - len(missing)} kept, in {out_dir}")
    return {n: sizes[n] for n in names}


def _report(sizes: dict[str, int]) -> None:
    values = sorted(sizes.values())
    mb = [v / 1e6 for v in values]
    print(
        f"{len(values)} photos, {sum(mb):.0f} MB: min {mb[0]:.2f} MB, "
        f"median {statistics.median(mb):.2f} MB, max {mb[-1]:.2f} MB"
    )
    outside = [n for n, v in sizes.items() if not MIN_BYTES <= v <= MAX_BYTES]
    if outside:
        raise SystemExit(f"{len(outside)} photos outside 2-5 MB, e.g. {outside[0]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="number of photos")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "corpus",
        help="folder of the corpus (default: bench/corpus)",
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes"
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")

    started = time.perf_counter()
    sizes = build_corpus(args.out, args.count, args.seed, args.jobs)
    _report(sizes)
    print(f"done in {time.perf_counter() - started:.1f} s with {args.jobs} workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
