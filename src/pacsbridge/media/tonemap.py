"""Pictures for the transcoder: frames made to fit H.264 High Profile Level 4.1.

:func:`plan_pictures` chooses the size and rate within Level 4.1 and the FFmpeg
filters that deinterlace, turn upright, make pixels square, keep one rate and
tone-map HDR to SDR; :class:`PictureEncoder` runs them and x264 on a stream.
(Tone mapping is the larger part, hence the module's name.)

PS3.5 8.2.7 wants 8-bit pictures, for which PQ and HLG signals mean nothing:
shown as they are they look grey and flat. :func:`write_cube` writes a table for
FFmpeg's ``lut3d`` filter that maps the non-linear BT.2020 R'G'B' of an HDR
picture straight to BT.709 R'G'B':

1. signal to display light in cd/m2: the PQ EOTF (ITU-R BT.2100), or the HLG
   inverse OETF and OOTF for a 1000 cd/m2 display (system gamma 1.2);
2. the BT.2390 EETF (ITU-R BT.2390 5.4.1) on the brightest component, which
   leaves light up to about 100 cd/m2 as it is and rolls the rest off so that
   the assumed 1000 cd/m2 peak lands on 203 cd/m2, the HDR reference white of
   ITU-R BT.2408 that SDR white stands for;
3. BT.2020 to BT.709 primaries in linear light, out-of-gamut parts clipped;
4. the inverse of the BT.1886 EOTF (gamma 2.4) of SDR displays.

The table is sampled in the HDR signal, which is close to perceptually uniform:
with 65 points a side, FFmpeg's interpolation stays within half an 8-bit code of
the curve on greys, and within 5 codes for 99 % of saturated colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, sqrt
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.container import OutputContainer
from av.filter import Graph
from av.video.frame import PictureType, VideoFrame

from pacsbridge.media.video import VideoInfo

Array = npt.NDArray[np.float64]
Filter = tuple[str, dict[str, str]]  # an FFmpeg filter's name and options

HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})  # PQ and HLG
# ISO/IEC 14496-10 Table A-2: High Profile's MaxBR and MaxCPB at Level 4.1 are
# 1.25 times Table A-1's, 62.5 Mbit/s and 78.125 Mbit; x264 gets a margin below.
# 8x8dct, a High Profile tool, makes x264 write High Profile at every preset.
_X264_PARAMS = "vbv-maxrate=50000:vbv-bufsize=62500:8x8dct=1"
# ISO/IEC 14496-10 Table A-1, Level 4.1: MaxFS and MaxMBPS in macroblocks, sides
# at most sqrt(8 * MaxFS) macroblocks (A.3.1 f), at most 172 pictures a second
# (A.3.1 a): the row video.classify() checks.
_MAX_FS, _MAX_MBPS, _MAX_RATE = 8_192, 245_760, 172
# Above 30 frames/s, a picture that would shrink below this has its rate halved.
_KEEP_RATE_MIN_PIXELS = 1280 * 720
_TURNS: dict[int, list[Filter]] = {
    0: [],
    90: [("transpose", {"dir": "clock"})],
    180: [("hflip", {}), ("vflip", {})],
    270: [("transpose", {"dir": "cclock"})],
}

_LUT_SIZE = 65
_SOURCE_PEAK = 1000.0  # cd/m2: what phones and most HDR10 masters assume
_SDR_WHITE = 203.0  # cd/m2, ITU-R BT.2408 HDR reference white
_SDR_GAMMA = 2.4  # ITU-R BT.1886
# ITU-R BT.2100 Table 4, PQ.
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# ITU-R BT.2100 Table 5, HLG; the luminance weights of BT.2020.
_A = 0.17883277
_B = 1 - 4 * _A
_C = 0.5 - _A * np.log(4 * _A)
_BT2020_Y = np.array([0.2627, 0.6780, 0.0593])
# Chromaticities (x, y) of the red, green and blue primaries; D65 white.
_BT2020_XY = ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046))
_BT709_XY = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
_D65_XY = (0.3127, 0.3290)


@dataclass(frozen=True)
class PicturePlan:
    """The pictures to encode: upright size, rate, the filters, what changes."""

    width: int
    height: int
    rate: Fraction
    filters: tuple[Filter, ...]
    hdr: bool  # tone-mapped: the pictures are BT.709 whatever the input said
    notes: tuple[str, ...]


def plan_pictures(info: VideoInfo, work_dir: Path) -> PicturePlan:
    """Size, rate and filters that turn the stream's frames into Level 4.1 ones."""
    width, height, rate = _fit(info)
    filters, notes = _timing(info, rate)

    turned = info.display_rotation in (90, 270)
    stored = (height, width) if turned else (width, height)
    size = {"w": str(stored[0]), "h": str(stored[1])}
    hdr = info.color_transfer in HDR_TRANSFERS
    if hdr:
        filters += [
            ("scale", {**size, "in_color_matrix": "bt2020"}),
            ("format", {"pix_fmts": "gbrp16le"}),
            ("lut3d", {"file": str(write_cube(info.color_transfer, work_dir))}),
            # Say what the table made of them, so that nothing converts them again.
            ("setparams", {"color_primaries": "bt709", "color_trc": "bt709"}),
            ("scale", {"out_color_matrix": "bt709", "out_range": "tv"}),
        ]
        notes.append("tone-mapped HDR to SDR")
    else:
        filters.append(("scale", {**size, "out_range": "tv"}))
    filters += [("format", {"pix_fmts": "yuv420p"}), ("setsar", {"sar": "1"})]
    filters += _TURNS[info.display_rotation]

    if info.display_rotation:
        notes.append("turned upright")
    if info.sample_aspect_ratio != 1:
        notes.append("resampled to square pixels")
    if (width, height) != _upright(info):
        notes.append(f"scaled to {width}x{height} to fit Level 4.1")
    return PicturePlan(width, height, rate, tuple(filters), hdr, tuple(notes))


def _timing(info: VideoInfo, rate: Fraction) -> tuple[list[Filter], list[str]]:
    filters: list[Filter] = []
    notes = []
    if info.interlaced:
        # A frame for a frame: the rate and the frame count stay the input's.
        filters.append(("bwdif", {"mode": "send_frame", "deint": "interlaced"}))
        notes.append("deinterlaced")
    if info.variable_frame_rate or rate != info.frame_rate:
        # Each picture at its own time on a constant grid, dropped or repeated.
        filters.append(("fps", {"fps": f"{rate.numerator}/{rate.denominator}"}))
    if info.variable_frame_rate:
        notes.append(f"made constant-rate at {_rate(rate)} frames/s")
    elif rate != info.frame_rate:
        notes.append(
            f"frame rate lowered from {_rate(info.frame_rate)} to {_rate(rate)} "
            "frames/s to fit Level 4.1"
        )
    return filters, notes


def _upright(info: VideoInfo) -> tuple[int, int]:
    """The picture as shown, in square pixels, sides rounded to even numbers."""
    width = _even(info.width * info.sample_aspect_ratio)
    height = _even(Fraction(info.height))
    return (height, width) if info.display_rotation in (90, 270) else (width, height)


def _fit(info: VideoInfo) -> tuple[int, int, Fraction]:
    """Output size and rate within Level 4.1, aspect kept.

    Above 30 frames/s the rate halves (every other frame dropped) rather than
    shrink the picture below 1280x720: detail matters more than smoothness in a
    clinical record. 1080p60 keeps its rate at 1360x764; 1080p120 becomes that.
    """
    width, height = _upright(info)
    rate = info.frame_rate
    while True:
        fitted = _largest(width, height, rate)
        small = fitted != (width, height) and (
            fitted[0] * fitted[1] < _KEEP_RATE_MIN_PIXELS
        )
        if rate <= _MAX_RATE and (rate <= 30 or not small):
            return (*fitted, rate)
        rate /= 2


def _largest(width: int, height: int, rate: Fraction) -> tuple[int, int]:
    """The largest even size of this aspect that Level 4.1 allows at this rate."""
    macroblocks = min(_MAX_FS, int(_MAX_MBPS / rate))
    guess = _even(Fraction(16 * sqrt(macroblocks * width / height)))
    for fitted_width in range(min(width, guess + 16), 1, -2):
        fitted = (fitted_width, _even(Fraction(fitted_width * height, width)))
        sides = (ceil(fitted[0] / 16), ceil(fitted[1] / 16))
        if sides[0] * sides[1] <= macroblocks and max(sides) ** 2 <= 8 * _MAX_FS:
            return fitted
    return 2, 2


def _even(length: Fraction) -> int:
    return max(2, round(length / 2) * 2)


def _rate(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


class PictureEncoder:
    """Decode, filter and encode a video stream to H.264 High Profile Level 4.1."""

    def __init__(
        self,
        plan: PicturePlan,
        source: av.VideoStream,
        out: OutputContainer,
        quality: int,
        preset: str,
        origin: Fraction,
    ) -> None:
        """``origin``: the input's start time, which becomes the output's zero."""
        self._plan, self._source, self._out = plan, source, out
        self._origin = origin
        source.codec_context.thread_type = "AUTO"
        options = {
            "preset": preset,
            "crf": str(quality),
            "profile": "high",
            "level": "4.1",
            "x264-params": _X264_PARAMS,
        }
        self._stream = out.add_stream("libx264", rate=plan.rate, options=options)
        context = self._stream.codec_context
        context.width, context.height = plan.width, plan.height
        context.pix_fmt = "yuv420p"
        context.time_base = 1 / plan.rate
        context.thread_type = "FRAME"
        context.color_range = 1  # MPEG: PS3.5 8.2.7 pictures are YBR_PARTIAL_420
        context.sample_aspect_ratio = Fraction(1)  # square, and said so in the VUI
        decoded = source.codec_context
        colours = (decoded.color_primaries, decoded.color_trc, decoded.colorspace)
        if plan.hdr:
            colours = (1, 1, 1)  # BT.709, what the tone-mapping table writes
        context.color_primaries, context.color_trc, context.colorspace = colours
        self._graph: Graph | None = None
        self._first = self._count = 0

    def feed(self, packet: av.Packet[av.stream.Stream] | None) -> None:
        for frame in self._source.codec_context.decode(packet):
            if self._graph is None:
                self._graph = self._build(frame)
            self._graph.push(frame)
            self._drain()

    def flush(self) -> None:
        self.feed(None)
        if self._graph is not None:
            self._graph.push(None)
            self._drain()
        self._encode(None)

    def _build(self, frame: VideoFrame) -> Graph:
        graph = Graph()
        source = graph.add(
            "buffer",
            video_size=f"{frame.width}x{frame.height}",
            pix_fmt=frame.format.name,
            time_base=str(self._source.time_base),
            pixel_aspect="1/1",
            colorspace=str(frame.colorspace),
            range=str(frame.color_range),
        )
        nodes = [graph.add(name, **args) for name, args in self._plan.filters]
        graph.link_nodes(source, *nodes, graph.add("buffersink")).configure()
        return graph

    def _drain(self) -> None:
        assert self._graph is not None
        while True:
            try:
                frame = self._graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            self._encode(frame)

    def _encode(self, frame: VideoFrame | None) -> None:
        if frame is not None:
            if self._count == 0 and frame.time is not None:
                # Where the first picture was shown, so that audio stays in step.
                shown = frame.time - self._origin
                self._first = max(0, round(shown * self._plan.rate))
            frame.pts = self._first + self._count
            frame.time_base = self._stream.codec_context.time_base
            frame.pict_type = PictureType.NONE  # x264 places its own key frames
            self._count += 1
        for packet in self._stream.encode(frame):
            self._out.mux(packet)


def write_cube(transfer: str, folder: Path) -> Path:
    """Write the LUT for ``transfer`` ("smpte2084" or "arib-std-b67") into folder."""
    path = folder / f"hdr-to-sdr-{transfer}.cube"
    if path.exists():
        return path

    # .cube order: red varies fastest, then green, then blue.
    steps = np.linspace(0.0, 1.0, _LUT_SIZE)
    blue, green, red = np.meshgrid(steps, steps, steps, indexing="ij")
    signal = np.stack([red.ravel(), green.ravel(), blue.ravel()], axis=1)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="ascii") as file:
        file.write(f'TITLE "{transfer} BT.2020 to BT.709 SDR"\n')
        file.write(f"LUT_3D_SIZE {_LUT_SIZE}\n")
        np.savetxt(file, hdr_to_sdr(signal, transfer), fmt="%.6f")
    partial.replace(path)
    return path


def hdr_to_sdr(signal: Array, transfer: str) -> Array:
    """BT.709 R'G'B' (0..1) for HDR BT.2020 R'G'B' signals, rows of three."""
    if transfer not in HDR_TRANSFERS:
        raise ValueError(f"not an HDR transfer: {transfer}")
    light = _pq_to_light(signal) if transfer == "smpte2084" else _hlg_to_light(signal)
    peak = light.max(axis=1, keepdims=True)
    ratio = np.divide(_eetf(peak), peak, out=np.zeros_like(peak), where=peak > 0)
    bt709 = light * ratio @ _bt2020_to_bt709().T / _SDR_WHITE
    result: Array = np.clip(bt709, 0.0, 1.0) ** (1 / _SDR_GAMMA)
    return result


def _pq_signal(light: Array) -> Array:
    """The PQ inverse EOTF: cd/m2 to signal (0..1)."""
    y = (np.clip(light, 0.0, 10_000.0) / 10_000.0) ** _M1
    result: Array = ((_C1 + _C2 * y) / (1 + _C3 * y)) ** _M2
    return result


def _pq_to_light(signal: Array) -> Array:
    e = np.clip(signal, 0.0, 1.0) ** (1 / _M2)
    ratio = np.maximum(e - _C1, 0.0) / (_C2 - _C3 * e)
    result: Array = 10_000.0 * ratio ** (1 / _M1)
    return result


def _hlg_to_light(signal: Array) -> Array:
    e = np.clip(signal, 0.0, 1.0)
    high = (np.exp((np.maximum(e, 0.5) - _C) / _A) + _B) / 12
    scene = np.where(e <= 0.5, e * e / 3, high)
    # The OOTF of BT.2100 for a 1000 cd/m2 display: system gamma 1.2.
    luminance = (scene @ _BT2020_Y)[:, np.newaxis]
    result: Array = _SOURCE_PEAK * luminance**0.2 * scene
    return result


def _eetf(light: Array) -> Array:
    """ITU-R BT.2390 EETF from 0.._SOURCE_PEAK to 0.._SDR_WHITE, black at zero."""
    source = _pq_signal(np.array(_SOURCE_PEAK))
    e1 = np.minimum(_pq_signal(light) / source, 1.0)
    max_lum = _pq_signal(np.array(_SDR_WHITE)) / source
    knee = 1.5 * max_lum - 0.5
    t = np.clip((e1 - knee) / (1 - knee), 0.0, 1.0)
    spline = (
        (2 * t**3 - 3 * t**2 + 1) * knee
        + (t**3 - 2 * t**2 + t) * (1 - knee)
        + (-2 * t**3 + 3 * t**2) * max_lum
    )
    return _pq_to_light(np.where(e1 < knee, e1, spline) * source)


def _bt2020_to_bt709() -> Array:
    result: Array = np.linalg.inv(_rgb_to_xyz(_BT709_XY)) @ _rgb_to_xyz(_BT2020_XY)
    return result


def _rgb_to_xyz(primaries: tuple[tuple[float, float], ...]) -> Array:
    """The RGB to CIE XYZ matrix of three primaries with the D65 white point."""
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    wx, wy = _D65_XY
    white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    result: Array = xyz * np.linalg.solve(xyz, white)
    return result
