"""A file's waveform overview: per-bucket min/max of the mono mix, read block by block.

The panel draws the overview instead of the samples, so an hour-long file costs a few
thousand numbers on screen. Reading happens on a worker thread (see :mod:`ui.app`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from daw_bridge.formats import (
    AUDIO_SUFFIXES,
    HEAD_BYTES,
    LIBAV_SUFFIXES,
    OGG_SUFFIXES,
    holds_opus,
)

LIBAV_CHUNK = 256  # frames a libav-read file is summarised by before its buckets are known


class OverviewError(ValueError):
    """The file cannot be read as audio: names the file and the reason."""


@dataclass(frozen=True)
class Overview:
    """The shape of a file's waveform.

    Attributes:
        path: the file (absolute).
        sr: sample rate in Hz.
        channels: channels in the file.
        duration_s: duration in seconds.
        mins: ``[buckets]`` float32, the lowest mono sample of each bucket.
        maxs: ``[buckets]`` float32, the highest mono sample of each bucket.
    """

    path: str
    sr: int
    channels: int
    duration_s: float
    mins: np.ndarray
    maxs: np.ndarray


def load_overview(path: str | os.PathLike[str], *, buckets: int = 4000) -> Overview:
    """Read ``path`` once and summarise it into ``buckets`` min/max pairs.

    Args:
        path: an audio file soundfile can read.
        buckets: number of min/max pairs (fewer when the file has fewer frames).

    Raises:
        OverviewError: missing, unsupported, empty or unreadable file.
    """
    import soundfile as sf

    p = Path(path).resolve()
    if not p.is_file():
        raise OverviewError(f"{p}: no such file")
    if p.suffix.lower() not in AUDIO_SUFFIXES:
        raise OverviewError(
            f"{p}: unsupported file type {p.suffix!r}; expected one of "
            f"{', '.join(sorted(AUDIO_SUFFIXES))}"
        )
    if p.suffix.lower() in LIBAV_SUFFIXES:
        return _libav_overview(p, buckets)
    try:
        with sf.SoundFile(str(p)) as f:
            if f.subtype == "OPUS":
                return _libav_overview(p, buckets)
            sr, channels, frames = f.samplerate, f.channels, f.frames
            if frames <= 0:
                raise OverviewError(f"{p}: no audio frames")
            n = max(1, min(buckets, frames))
            edges = np.linspace(0, frames, n + 1).astype(np.int64)
            mins = np.zeros(n, np.float32)
            maxs = np.zeros(n, np.float32)
            block = max(1 << 16, int(edges[1] - edges[0]) + 1)
            pos = 0
            for data in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                mono = np.nan_to_num(data.mean(axis=1))
                lo = int(np.searchsorted(edges, pos, side="right")) - 1
                hi = int(np.searchsorted(edges, pos + len(mono), side="left"))
                for b in range(max(lo, 0), min(hi, n)):
                    a, z = max(edges[b], pos) - pos, min(edges[b + 1], pos + len(mono)) - pos
                    if z > a:
                        seg = mono[a:z]
                        first = edges[b] >= pos
                        mins[b] = seg.min() if first else min(mins[b], seg.min())
                        maxs[b] = seg.max() if first else max(maxs[b], seg.max())
                pos += len(mono)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        if p.suffix.lower() in OGG_SUFFIXES and _holds_opus(p):
            return _libav_overview(p, buckets)  # Opus libsndfile will not open
        raise OverviewError(f"{p}: unreadable audio ({exc})") from exc
    return Overview(str(p), int(sr), int(channels), frames / sr, mins, maxs)


def _holds_opus(p: Path) -> bool:
    """:func:`daw_bridge.formats.holds_opus` of the file's first bytes."""
    with p.open("rb") as f:
        return holds_opus(f.read(HEAD_BYTES))


def _libav_overview(p: Path, buckets: int) -> Overview:
    """:func:`load_overview` of a file libav decodes. Its length is known only once decoded,
    so the mono mix is first summarised as min/max pairs of chunks (:data:`LIBAV_CHUNK`
    frames, 5 ms at 48 kHz, or fewer where the container states a length under ``buckets``
    chunks), which the buckets then gather."""
    try:
        import av
    except ImportError:
        raise OverviewError(f"{p}: reading {p.suffix} files needs PyAV (pip install av)") from None
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    carry = np.zeros(0, np.float32)
    frames = 0
    chunk = LIBAV_CHUNK

    def summarise(mono: np.ndarray) -> None:  # whole chunks, or the last one (shorter)
        if mono.size:
            chunks = mono.reshape(-1, min(chunk, mono.size))
            lows.append(chunks.min(axis=1))
            highs.append(chunks.max(axis=1))

    try:
        with av.open(str(p)) as container:
            if not container.streams.audio:
                raise OverviewError(f"{p}: the container holds no audio stream")
            stream = container.streams.audio[0]
            if stream.codec_context is None or not stream.rate:
                raise OverviewError(f"{p}: libav has no decoder for its audio")
            sr, channels = int(stream.rate), stream.codec_context.layout.nb_channels
            if stream.duration is not None and stream.time_base is not None:
                stated = float(stream.duration * stream.time_base) * sr
                chunk = int(np.clip(stated // max(1, buckets), 1, LIBAV_CHUNK))
            planar = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
            for frame in container.decode(stream):
                for out in planar.resample(frame):
                    mono = np.nan_to_num(out.to_ndarray().mean(axis=0)).astype(np.float32)
                    frames += mono.size
                    joined = np.concatenate([carry, mono])
                    keep = joined.size % chunk
                    summarise(joined[: joined.size - keep])
                    carry = joined[joined.size - keep :]
    except (av.FFmpegError, ValueError) as exc:  # ValueError: the format changes part-way
        raise OverviewError(f"{p}: unreadable audio ({exc})") from exc
    summarise(carry)
    if frames <= 0:
        raise OverviewError(f"{p}: no audio frames")
    mins, maxs = np.concatenate(lows), np.concatenate(highs)
    edges = np.linspace(0, mins.size, max(1, min(buckets, mins.size)) + 1).astype(np.int64)
    return Overview(
        str(p),
        sr,
        int(channels),
        frames / sr,
        np.minimum.reduceat(mins, edges[:-1]),
        np.maximum.reduceat(maxs, edges[:-1]),
    )
