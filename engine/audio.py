"""Reading, slicing, mixing down, resampling and validating audio.

Arrays are float32 and channel-first: ``[channels, frames]`` for multichannel audio,
``[frames]`` once mixed to mono. Every failure a user can cause raises
:class:`~engine.errors.AudioError` naming the file and the reason.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from daw_bridge.formats import AUDIO_SUFFIXES, HEAD_BYTES, LIBAV_SUFFIXES, OGG_SUFFIXES, holds_opus
from engine.errors import AudioError

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: frozenset[str] = AUDIO_SUFFIXES  # daw_bridge.formats: the panel's too
DEFAULT_MAX_DURATION_S = 3600.0
# Containers whose header frame count is an estimate: an MP3 without a Xing/LAME header is
# sized from its bitrate and byte count, and encoder delay and padding move the real length.
ESTIMATED_LENGTH_FORMATS: frozenset[str] = frozenset({"MP3"})
LENGTH_TOLERANCE = 0.02  # decoded length may fall this share short of the estimate ...
LENGTH_TOLERANCE_S = 0.25  # ... or this many seconds, whichever is larger
BLOCK_FRAMES = 65536
"""Frames decoded at a time: a region is decoded block by block into its final array."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says.

    Attributes:
        path: the file.
        sr: sample rate in Hz.
        channels: number of channels.
        frames: frames per channel declared by the header.
        format: container name, e.g. ``"WAV"``.
        subtype: sample encoding, e.g. ``"PCM_24"``.
    """

    path: str
    sr: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.frames / self.sr


@dataclass(frozen=True)
class Audio:
    """Decoded samples of one region of a file.

    Attributes:
        samples: ``[channels, frames]`` float32 in [-1, 1].
        sr: sample rate in Hz.
        path: the file the samples came from.
        start_s: where the region starts in the file, in seconds.
    """

    samples: np.ndarray
    sr: int
    path: str
    start_s: float = 0.0

    @property
    def duration_s(self) -> float:
        """Duration of the region in seconds."""
        return self.samples.shape[-1] / self.sr


def check_file(path: Path) -> int:
    """Refuse what is not a non-empty regular file of a supported type, without reading it.

    Returns:
        The file's size in bytes.

    Raises:
        AudioError: naming the file and the reason.
    """
    if not path.is_file():
        reason = "not a regular file" if path.exists() else "no such file"
        raise AudioError(f"{path}: {reason}")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise AudioError(
            f"{path}: unsupported file type {path.suffix!r}; expected one of "
            f"{', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    return size


def info(
    path: str | os.PathLike[str],
    *,
    file: BinaryIO | None = None,
    max_duration_s: float | None = None,
) -> AudioInfo:
    """Read an audio file's header.

    Args:
        path: the file (the name errors and results carry).
        file: the file already opened and checked by the caller (the server opens a path once
            and reads it only through that descriptor); None to open ``path``.
        max_duration_s: a file libav decodes (:func:`uses_libav`) whose container states a
            longer duration is refused before it is decoded (its length is what decodes);
            None: no limit here.

    Raises:
        AudioError: the file does not exist, has an unsupported suffix, is empty or unreadable.
    """
    import soundfile as sf

    p = Path(path)
    if file is None:
        check_file(p)
    else:
        file.seek(0)
    if p.suffix.lower() in LIBAV_SUFFIXES:
        return _libav_info(p, file, max_duration_s=max_duration_s)
    try:
        i = sf.info(file if file is not None else str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        if p.suffix.lower() in OGG_SUFFIXES and _holds_opus(p, file):
            return _libav_info(p, file, max_duration_s=max_duration_s)
        raise AudioError(f"{p}: unreadable audio ({exc})") from exc
    if i.subtype == "OPUS":
        return _libav_info(p, file, max_duration_s=max_duration_s)
    if i.frames <= 0 or i.samplerate <= 0 or i.channels <= 0:
        raise AudioError(f"{p}: no audio frames (frames={i.frames}, sr={i.samplerate})")
    frames = int(i.frames)
    if i.format in ESTIMATED_LENGTH_FORMATS:
        frames = _estimated_length_frames(p, i, file=file)
        if frames <= 0:
            raise AudioError(f"{p}: no audio frames could be decoded")
    declared, actual = _data_chunk_sizes(i.extra_info)
    if declared is not None and actual is not None and actual < declared:
        raise AudioError(
            f"{p}: file is truncated: its header declares {declared} bytes of audio data but "
            f"only {actual} are present"
        )
    return AudioInfo(str(p), int(i.samplerate), int(i.channels), frames, i.format, i.subtype)


_STREAMING_SIZES = (0, 0xFFFFFFFF)  # placeholders written by recorders that never finished


def _data_chunk_sizes(extra_info: str) -> tuple[int | None, int | None]:
    """Declared and actual data-chunk sizes from libsndfile's WAV/AIFF header report.

    libsndfile reports a short data chunk as ``data : 352800 (should be 176378)``.
    """
    for line in extra_info.splitlines():
        m = re.match(r"\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", line)
        if m:
            declared, actual = int(m.group(1)), int(m.group(2))
            if declared in _STREAMING_SIZES:
                return None, None
            return declared, actual
    return None, None


def load(
    path: str | os.PathLike[str],
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    max_sr: int | None = None,
    file: BinaryIO | None = None,
) -> Audio:
    """Decode ``[start_s, end_s)`` of an audio file, block by block into one array.

    Args:
        path: WAV (16/24/32-bit int or float), FLAC, OGG (Vorbis, Opus), MP3, AIFF, or AAC /
            ALAC in MP4 (.m4a, .mp4); Opus and MP4 are decoded with libav (PyAV).
        start_s: region start in seconds (>= 0).
        end_s: region end in seconds (<= the file's duration); ``None`` for the end of the file.
        max_duration_s: files longer than this are refused.
        max_sr: a file at a higher rate is resampled to this rate block by block while it is
            decoded, so only samples at ``max_sr`` are ever held; None = keep the file's rate.
        file: the file already opened by the caller (see :func:`info`).

    Returns:
        The region's samples, ``[channels, frames]`` float32, validated finite and non-empty.

    Raises:
        AudioError: unreadable, empty, truncated or too long file; region outside the file;
            NaN or Inf samples.
    """
    import soundfile as sf

    hdr = info(path, file=file, max_duration_s=max_duration_s)
    if hdr.duration_s > max_duration_s:
        raise AudioError(
            f"{hdr.path}: duration {hdr.duration_s:.1f} s exceeds the limit of "
            f"{max_duration_s:.1f} s"
        )
    start, stop = region_frames(hdr, start_s=start_s, end_s=end_s)
    sr = hdr.sr if max_sr is None else min(hdr.sr, max_sr)
    if file is not None:
        file.seek(0)
    try:
        with _open(hdr, file) as f:
            f.seek(start)
            samples, decoded = _decode(f, stop - start, sr=hdr.sr, target_sr=sr)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(
            f"{hdr.path}: decoding failed, the file is truncated or corrupt ({exc})"
        ) from exc
    if decoded < stop - start:
        raise AudioError(
            f"{hdr.path}: file is truncated: header declares {hdr.frames} frames but only "
            f"{start + decoded} could be decoded"
        )
    validate(samples, source=hdr.path)
    return Audio(samples=samples, sr=sr, path=hdr.path, start_s=start / hdr.sr)


def check_alike(main: AudioInfo, other: AudioInfo) -> None:
    """Refuse a channel file that cannot join ``main``'s: another sample rate or length.

    A DAW keeps a multichannel region as one file a channel (Ardour does); the files of one
    region share their rate and length.

    Raises:
        AudioError: naming ``other``, what differed, its value and ``main``'s.
    """
    if other.sr != main.sr:
        raise AudioError(
            f"{other.path}: sample rate {other.sr} Hz differs from {main.path}'s {main.sr} Hz; "
            "a region's channel files must share one sample rate"
        )
    if other.frames != main.frames:
        raise AudioError(
            f"{other.path}: length {other.frames} frames ({other.duration_s:.3f} s) differs from "
            f"{main.path}'s {main.frames} frames ({main.duration_s:.3f} s); a region's channel "
            "files must have one length"
        )


def join_channels(clips: list[Audio]) -> Audio:
    """One region from its channel files' clips (decoded over one span): their channels in order.

    The result is what one interleaved file of those channels decodes to, so it is analysed,
    measured (loudness sums the channels) and cached as that file would be; the analysers that
    take mono average the channels (:func:`to_mono`).

    Args:
        clips: ``[channels_i, frames]`` each, at one rate; the first names the result.

    Raises:
        AudioError: the clips differ in rate or frames.
    """
    first = clips[0]
    for c in clips[1:]:
        if c.sr != first.sr or c.samples.shape[-1] != first.samples.shape[-1]:
            raise AudioError(
                f"{c.path}: decoded {c.samples.shape[-1]} frames at {c.sr} Hz over the region, "
                f"{first.path} {first.samples.shape[-1]} at {first.sr} Hz; expected the same"
            )
    if len(clips) == 1:
        return first
    samples = np.concatenate([c.samples for c in clips], axis=0)
    return Audio(samples=samples, sr=first.sr, path=first.path, start_s=first.start_s)


def _open(hdr: AudioInfo, file: BinaryIO | None) -> Any:
    """The decoder for a file: libsndfile, or libav for MP4 containers, Opus and the MP3s
    libsndfile cannot read through."""
    import soundfile as sf

    p = Path(hdr.path)
    known = _DECODED.get(_file_key(p, file))
    if uses_libav(hdr) or (known is not None and known.libav):
        return LibavReader(file if file is not None else p, name=hdr.path)
    return sf.SoundFile(file if file is not None else hdr.path)


def held_frames(frames: int, *, sr: int, target_sr: int) -> int:
    """Frames that ``frames`` at ``sr`` become at ``target_sr`` (what :func:`load` holds)."""
    return frames if sr == target_sr else -(-frames * target_sr // sr)


def _decode(f: object, frames: int, *, sr: int, target_sr: int) -> tuple[np.ndarray, int]:
    """Read ``frames`` from an open SoundFile into ``[channels, frames']`` float32, one block at
    a time, resampling each block to ``target_sr`` first when the rates differ.

    Returns:
        The samples and the number of frames actually decoded (fewer when truncated).
    """
    channels: int = f.channels  # type: ignore[attr-defined]
    out = np.empty((channels, held_frames(frames, sr=sr, target_sr=target_sr)), np.float32)
    stream = None
    if target_sr != sr:
        import soxr

        stream = soxr.ResampleStream(sr, target_sr, channels, dtype="float32", quality="HQ")
    decoded = held = 0
    while decoded < frames:
        block = f.read(min(BLOCK_FRAMES, frames - decoded), dtype="float32", always_2d=True)  # type: ignore[attr-defined]
        if block.shape[0] == 0:
            break
        decoded += block.shape[0]
        if stream is not None:
            block = stream.resample_chunk(block, last=decoded >= frames)
        n = min(block.shape[0], out.shape[1] - held)
        out[:, held : held + n] = block[:n].T
        held += n
    if stream is not None and decoded < frames:
        tail = stream.resample_chunk(np.zeros((0, channels), np.float32), last=True)
        n = min(tail.shape[0], out.shape[1] - held)
        out[:, held : held + n] = tail[:n].T
        held += n
    return out[:, :held], decoded


def _estimated_length_frames(path: Path, i: Any, *, file: BinaryIO | None = None) -> int:
    """The real frame count of a file whose header only estimates it (an MP3).

    The stream is decoded once (cached by path, size and modification time) and the decoded
    length wins over the header's estimate. A file cut short is still refused: when a Xing,
    Info or VBRI header states the length (read with mutagen), decoding must reach it within
    ``LENGTH_TOLERANCE`` of it or ``LENGTH_TOLERANCE_S``, whichever is larger.

    Raises:
        AudioError: decoding fails part-way, or the stream ends well before the length stated.
    """
    cache_key = _file_key(path, file)
    if cache_key in _DECODED:
        return _DECODED[cache_key].frames
    import soundfile as sf

    decoded = 0
    if file is not None:
        file.seek(0)
    try:
        with sf.SoundFile(file if file is not None else str(path)) as f:
            while n := f.read(1 << 16, dtype="float32", always_2d=True).shape[0]:
                decoded += n
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(
            f"{path}: decoding failed, the file is truncated or corrupt ({exc})"
        ) from exc
    if file is not None:
        file.seek(0)
    libav = False
    stated = _stated_frames(file if file is not None else path, int(i.samplerate))
    if stated is None:
        if file is not None:
            file.seek(0)
        walked = mpeg_frames(file if file is not None else path)
        if walked > decoded + LENGTH_TOLERANCE_S * i.samplerate:
            # libsndfile stops at its bitrate estimate: a VBR MP3 without a Xing header
            decoded = _libav_length(path, file, walked=walked, estimate=decoded)
            libav = True
    else:
        slack = max(LENGTH_TOLERANCE * stated, LENGTH_TOLERANCE_S * i.samplerate)
        if decoded < stated - slack:
            raise AudioError(
                f"{path}: file is truncated: its header states {stated} frames but only "
                f"{decoded} could be decoded"
            )
    if decoded != i.frames:
        log.debug(
            "%s: header estimates %d frames, %d decoded; the decoded length wins",
            path,
            i.frames,
            decoded,
        )
    _remember(cache_key, _Decoded(decoded, libav))
    return decoded


def uses_libav(hdr: AudioInfo) -> bool:
    """Whether a file is decoded with libav: MP4 containers and Opus (:data:`LIBAV_SUFFIXES`)."""
    return Path(hdr.path).suffix.lower() in LIBAV_SUFFIXES or hdr.subtype == "OPUS"


def _holds_opus(path: Path, file: BinaryIO | None) -> bool:
    """:func:`daw_bridge.formats.holds_opus` of the file's first bytes."""
    if file is not None:
        file.seek(0)
        head = file.read(HEAD_BYTES)
        file.seek(0)
    else:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
    return holds_opus(head)


def _libav_info(path: Path, file: BinaryIO | None, *, max_duration_s: float | None) -> AudioInfo:
    """The header of a file libav decodes (:data:`LIBAV_SUFFIXES`, Opus in Ogg).

    The frame count is what decodes (once, remembered like an MP3's): the container states a
    duration that includes the encoder's priming samples. A stream that stops well short of
    the stated duration (``LENGTH_TOLERANCE`` of it or ``LENGTH_TOLERANCE_S``, whichever is
    larger) is refused as truncated.

    Raises:
        AudioError: libav cannot open it, it has no audio stream, decoding fails part-way, or
            it is truncated or holds no frames.
    """
    key = _file_key(path, file)
    if file is not None:
        file.seek(0)
    with LibavReader(file if file is not None else path, name=str(path)) as r:
        stated_s = None if r.stated_frames is None else r.stated_frames / r.sr
        if max_duration_s is not None and stated_s is not None and stated_s > max_duration_s:
            raise AudioError(
                f"{path}: duration {stated_s:.1f} s exceeds the limit of {max_duration_s:.1f} s"
            )
        known = _DECODED.get(key)
        if known is None:
            known = _Decoded(r.frames_to_end(), libav=True)
            if known.frames > 0:
                _remember(key, known)
    if file is not None:
        file.seek(0)
    if known.frames <= 0:
        raise AudioError(f"{path}: no audio frames could be decoded")
    stated = r.stated_frames
    if stated is not None:
        slack = max(LENGTH_TOLERANCE * stated, LENGTH_TOLERANCE_S * r.sr)
        if known.frames < stated - slack:
            raise AudioError(
                f"{path}: file is truncated: its header states {stated} frames but only "
                f"{known.frames} could be decoded"
            )
    return AudioInfo(str(path), r.sr, r.channels, known.frames, r.container, r.codec.upper())


FileKey = tuple[str, int, int, int]


class _Decoded(NamedTuple):
    """What decoding an estimated-length file once found out."""

    frames: int  # the real frame count
    libav: bool  # libsndfile stops short of the end: read it with libav


_DECODED: dict[FileKey, _Decoded] = {}  # by _file_key, the 256 most recent files


def _remember(key: FileKey, decoded: _Decoded) -> None:
    if len(_DECODED) >= 256:
        _DECODED.pop(next(iter(_DECODED)))
    _DECODED[key] = decoded


def _file_key(path: Path, file: BinaryIO | None) -> FileKey:
    """A file's identity for :data:`_DECODED`: path, inode, size and modification time (of
    the open descriptor when there is one)."""
    st = os.fstat(file.fileno()) if file is not None else path.stat()
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


# MPEG audio frame headers: bitrates (kbit/s) by version group and index, sample rates (Hz)
_MPEG1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_L3_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mpeg_frames(source: Path | BinaryIO) -> int:
    """Audio frames (samples per channel) in an MP3, counted by walking its frame headers.

    Counts every Layer III frame from the first sync after an ID3v2 tag up to the first byte
    that is not a frame header (an ID3v1 or APE tag, garbage, the end). Includes the encoder's
    delay and padding, which only a Xing/LAME header states.

    Args:
        source: the file, or a binary file object positioned at its start.
    """
    data = source.read_bytes() if isinstance(source, Path) else source.read()
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = 0
        for b in data[6:10]:
            size = (size << 7) | (b & 0x7F)
        pos = 10 + size + (10 if data[5] & 0x10 else 0)
    while pos + 4 <= len(data) and not (data[pos] == 0xFF and data[pos + 1] & 0xE0 == 0xE0):
        pos += 1  # to the first frame sync
    samples = 0
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        if data[pos] != 0xFF or b1 & 0xE0 != 0xE0:
            break
        version, layer = (b1 >> 3) & 0x3, (b1 >> 1) & 0x3
        rate_i, kbps_i, pad = (b2 >> 2) & 0x3, b2 >> 4, (b2 >> 1) & 0x1
        if version == 1 or layer != 1 or rate_i == 3 or kbps_i in (0, 15):
            break  # not Layer III, or a reserved / free-format field
        rate = _MPEG_RATES[version][rate_i]
        kbps = (_MPEG1_L3_KBPS if version == 3 else _MPEG2_L3_KBPS)[kbps_i]
        per_frame = 1152 if version == 3 else 576
        pos += per_frame // 8 * kbps * 1000 // rate + pad
        samples += per_frame
    return samples


def _libav_length(path: Path, file: BinaryIO | None, *, walked: int, estimate: int) -> int:
    """Decode an MP3 with libav (PyAV) to count its frames; libsndfile stopped at ``estimate``.

    Raises:
        AudioError: PyAV is not installed (the message says what to do), or decoding fails.
    """
    try:
        import av  # noqa: F401
    except ImportError:
        raise AudioError(
            f"{path}: a VBR MP3 without a Xing header: libsndfile reads only {estimate} of its "
            f"{walked} frames; install PyAV (pip install av) to read all of it, or re-encode it"
        ) from None
    if file is not None:
        file.seek(0)
    with LibavReader(file if file is not None else path, name=str(path)) as r:
        decoded = r.frames_to_end()
    log.debug("%s: libsndfile estimated %d frames, libav decoded %d", path, estimate, decoded)
    return decoded


class LibavReader:
    """Sequential decoding with libav (PyAV) behind the part of SoundFile's interface that
    :func:`load` uses (``channels``, ``seek``, ``read``): for MP4 containers, Opus and the MP3s
    libsndfile cannot read to the end. Seeking decodes from the start (exact, and cheap next to
    analysis).

    Attributes:
        channels: the audio stream's channels.
        sr: its sample rate in Hz.
        codec: its codec's name (``"aac"``, ``"alac"``, ``"opus"``, ``"mp3"``).
        container: the container's name (``"MP4"``, ``"OGG"``, ``"MP3"``).
        stated_frames: the frames the container states (its duration), None when it states
            none.
    """

    def __init__(self, source: Path | BinaryIO, *, name: str | None = None) -> None:
        import av

        self._source = name or str(source)  # what errors name
        try:
            self._container = av.open(str(source) if isinstance(source, Path) else source, mode="r")
        except av.FFmpegError as exc:
            raise AudioError(f"{self._source}: libav cannot open it ({exc})") from exc
        try:
            if not self._container.streams.audio:
                raise AudioError(f"{self._source}: the container holds no audio stream")
            stream = self._container.streams.audio[0]
            if stream.codec_context is None or not stream.rate:
                raise AudioError(
                    f"{self._source}: libav has no decoder for its audio "
                    f"({stream.codec_tag or 'an unknown codec'})"
                )
            self.channels: int = stream.codec_context.layout.nb_channels
            self.sr: int = int(stream.rate)
            self.codec: str = stream.codec_context.name
            names = self._container.format.name.split(",")  # "mov,mp4,m4a,3gp,3g2,mj2"
            self.container: str = "MP4" if "mp4" in names else names[0].upper()
            self.stated_frames: int | None = (
                None
                if stream.duration is None or stream.time_base is None
                else round(float(stream.duration * stream.time_base) * self.sr)
            )
            self._resampler = av.AudioResampler(
                format="fltp", layout=stream.layout, rate=stream.rate
            )
            self._frames = self._container.decode(stream)
        except BaseException:
            self._container.close()
            raise
        self._buffer = np.zeros((self.channels, 0), np.float32)
        self._pos = 0

    def __enter__(self) -> LibavReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._container.close()

    def frames_to_end(self) -> int:
        """Decode the rest of the stream; the number of frames it held."""
        frames = 0
        while n := self.read(1 << 16).shape[0]:
            frames += n
        return frames

    def seek(self, frame: int) -> None:
        """Move to ``frame`` (from the start of the stream)."""
        if frame < self._pos:
            raise AudioError(f"{self._source}: cannot seek back to frame {frame}")
        while self._pos < frame and self.read(min(1 << 16, frame - self._pos)).shape[0]:
            pass

    def read(self, frames: int, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        """Up to ``frames`` frames as ``[frames, channels]`` float32 (fewer at the end)."""
        import av

        while self._buffer.shape[1] < frames:
            try:
                frame = next(self._frames)
            except StopIteration:
                break
            except (av.FFmpegError, ValueError) as exc:
                raise AudioError(
                    f"{self._source}: decoding failed part-way, the file is truncated or "
                    f"corrupt ({exc})"
                ) from exc
            try:
                outs = self._resampler.resample(frame)
            except ValueError as exc:  # the stream's format changed mid-file
                raise AudioError(
                    f"{self._source}: the audio changes format part-way ({exc})"
                ) from exc
            for out in outs:
                block = out.to_ndarray()
                if out.sample_rate != self.sr or block.shape[0] != self.channels:
                    raise AudioError(
                        f"{self._source}: the audio changes part-way to {block.shape[0]} "
                        f"channels at {out.sample_rate} Hz; expected {self.channels} at "
                        f"{self.sr} Hz"
                    )
                self._buffer = np.concatenate([self._buffer, block], axis=1)
        block, self._buffer = self._buffer[:, :frames], self._buffer[:, frames:]
        self._pos += block.shape[1]
        return np.ascontiguousarray(block.T, dtype=np.float32)


def _stated_frames(source: Path | BinaryIO, sr: int) -> int | None:
    """Frames stated by an MP3's Xing/Info/VBRI header; None without one (a bitrate guess)."""
    from mutagen import MutagenError
    from mutagen.mp3 import MP3, BitrateMode

    try:
        mp3 = MP3(str(source) if isinstance(source, Path) else source)
    except (MutagenError, OSError) as exc:
        log.debug("mutagen cannot read the MPEG header (%s)", exc)
        return None
    stream = mp3.info
    if stream is None or stream.bitrate_mode == BitrateMode.UNKNOWN:
        return None
    return round(stream.length * sr)


def region_frames(hdr: AudioInfo, *, start_s: float, end_s: float | None) -> tuple[int, int]:
    """Convert ``[start_s, end_s)`` to frame indices, refusing regions outside the file.

    A region may overshoot the end by up to 10 ms (DAW rounding); it is clipped there.
    """
    end = hdr.duration_s if end_s is None else end_s
    if not (np.isfinite(start_s) and np.isfinite(end)):
        raise AudioError(f"{hdr.path}: region [{start_s}, {end}) is not finite")
    if start_s < 0:
        raise AudioError(f"{hdr.path}: region start {start_s:.3f} s is negative")
    if end <= start_s:
        raise AudioError(f"{hdr.path}: region [{start_s:.3f}, {end:.3f}) s is empty or reversed")
    if start_s >= hdr.duration_s or end > hdr.duration_s + 0.010:
        raise AudioError(
            f"{hdr.path}: region [{start_s:.3f}, {end:.3f}) s lies outside the file "
            f"(duration {hdr.duration_s:.3f} s)"
        )
    start = round(start_s * hdr.sr)
    stop = min(hdr.frames, round(end * hdr.sr))
    if stop <= start:
        raise AudioError(f"{hdr.path}: region [{start_s:.3f}, {end:.3f}) s holds no frames")
    return start, stop


def validate(samples: np.ndarray, *, source: str = "<array>") -> None:
    """Refuse empty arrays and NaN/Inf samples.

    Raises:
        AudioError: naming ``source``, the problem and where it is.
    """
    if samples.size == 0:
        raise AudioError(f"{source}: no samples")
    finite = np.isfinite(samples)
    if not finite.all():
        bad = int(np.argmin(finite.reshape(-1) if samples.ndim == 1 else finite.all(axis=0)))
        raise AudioError(
            f"{source}: {int((~finite).sum())} non-finite (NaN/Inf) samples, first at frame {bad}"
        )


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average ``[channels, frames]`` to ``[frames]``; a 1-D array is returned unchanged."""
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=0, dtype=np.float32)


def resample(samples: np.ndarray, *, sr: int, target_sr: int) -> np.ndarray:
    """Resample ``[frames]`` or ``[channels, frames]`` from ``sr`` to ``target_sr`` (soxr HQ)."""
    if sr <= 0 or target_sr <= 0:
        raise AudioError(f"sample rates must be positive, got sr={sr}, target_sr={target_sr}")
    if sr == target_sr:
        return samples
    import soxr

    out = soxr.resample(samples.T, sr, target_sr, quality="HQ").T
    return np.ascontiguousarray(out, dtype=np.float32)


def to_analysis(audio: Audio, *, sr: int) -> np.ndarray:
    """Mono ``[frames]`` float32 at ``sr`` Hz: what the analysers consume."""
    return resample(to_mono(audio.samples), sr=audio.sr, target_sr=sr)


def write(
    path: str | os.PathLike[str], samples: np.ndarray, *, sr: int, subtype: str | None = None
) -> None:
    """Write ``[frames]`` or ``[channels, frames]`` to a file whose format follows its suffix."""
    import soundfile as sf

    data = samples.T if samples.ndim == 2 else samples
    sf.write(str(path), data, sr, subtype=subtype)
