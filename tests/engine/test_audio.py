"""engine.audio: every format reads, regions slice exactly, bad input raises AudioError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from engine import audio
from engine.errors import AudioError
from tests.synth import tone

SR = 44100


def _stereo(duration_s: float = 2.0) -> np.ndarray:
    left = tone(440.0, duration_s, sr=SR)
    right = tone(660.0, duration_s, sr=SR)
    return np.stack([left, right])


@pytest.mark.parametrize(
    ("suffix", "subtype", "tol"),
    [
        (".wav", "PCM_16", 1e-4),
        (".wav", "PCM_24", 1e-6),
        (".wav", "PCM_32", 1e-6),
        (".wav", "FLOAT", 0.0),
        (".flac", "PCM_16", 1e-4),
        (".ogg", "VORBIS", None),
        (".mp3", "MPEG_LAYER_III", None),
    ],
)
def test_load_formats(tmp_path: Path, suffix: str, subtype: str, tol: float | None) -> None:
    x = _stereo()
    path = tmp_path / f"a{suffix}"
    audio.write(path, x, sr=SR, subtype=subtype)
    a = audio.load(path)
    assert a.sr == SR
    assert a.samples.dtype == np.float32
    assert a.samples.shape[0] == 2
    if tol is not None:
        assert a.samples.shape == x.shape
        np.testing.assert_allclose(a.samples, x, atol=tol)
    else:  # lossy: same length within codec padding, same spectrum peak
        assert abs(a.samples.shape[1] - x.shape[1]) < 0.1 * SR
        spec = np.abs(np.fft.rfft(a.samples[0, :SR]))
        assert abs(np.argmax(spec) - 440) <= 2


def test_region_slicing_is_exact(tmp_path: Path) -> None:
    x = _stereo(3.0)
    path = tmp_path / "a.wav"
    audio.write(path, x, sr=SR, subtype="FLOAT")
    a = audio.load(path, start_s=0.5, end_s=1.25)
    np.testing.assert_array_equal(a.samples, x[:, int(0.5 * SR) : int(1.25 * SR)])
    assert a.start_s == pytest.approx(0.5)
    assert a.duration_s == pytest.approx(0.75)


def test_mono_and_resample() -> None:
    x = _stereo(1.0)
    mono = audio.to_mono(x)
    assert mono.shape == (SR,)
    np.testing.assert_allclose(mono, x.mean(axis=0), atol=1e-7)
    y = audio.resample(mono, sr=SR, target_sr=22050)
    assert y.shape == (22050,) and y.dtype == np.float32
    spec = np.abs(np.fft.rfft(audio.to_mono(audio.resample(x, sr=SR, target_sr=22050))))
    assert np.argmax(spec) in (440, 660)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        audio.load(tmp_path / "nope.wav")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        audio.load(p)


def test_unreadable_file(tmp_path: Path) -> None:
    p = tmp_path / "garbage.wav"
    p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    with pytest.raises(AudioError, match=r"garbage\.wav"):
        audio.load(p)


def test_unsupported_suffix(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("la la la")
    with pytest.raises(AudioError, match="unsupported file type '.txt'"):
        audio.load(p)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_truncated_file(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"cut{suffix}"
    audio.write(p, _stereo(2.0), sr=SR, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        audio.load(p)


def test_nan_samples(tmp_path: Path) -> None:
    x = _stereo(1.0)
    x[1, 1234] = np.nan
    p = tmp_path / "nan.wav"
    sf.write(p, x.T, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"non-finite .* frame 1234"):
        audio.load(p)


def test_inf_samples_in_region_only(tmp_path: Path) -> None:
    x = _stereo(2.0)
    x[0, int(1.5 * SR)] = np.inf
    p = tmp_path / "inf.wav"
    sf.write(p, x.T, SR, subtype="FLOAT")
    assert audio.load(p, start_s=0.0, end_s=1.0).duration_s == pytest.approx(1.0)
    with pytest.raises(AudioError, match="non-finite"):
        audio.load(p, start_s=1.0, end_s=2.0)


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        (-1.0, 1.0, "negative"),
        (1.0, 1.0, "empty or reversed"),
        (1.5, 0.5, "empty or reversed"),
        (0.5, 3.0, "outside the file"),
        (2.5, 3.0, "outside the file"),
        (0.0, float("nan"), "not finite"),
    ],
)
def test_region_outside_file(tmp_path: Path, start: float, end: float, match: str) -> None:
    p = tmp_path / "a.wav"
    audio.write(p, _stereo(2.0), sr=SR)
    with pytest.raises(AudioError, match=match):
        audio.load(p, start_s=start, end_s=end)


def test_region_overshoot_within_rounding_is_clipped(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    audio.write(p, _stereo(2.0), sr=SR)
    assert audio.load(p, start_s=1.0, end_s=2.005).samples.shape[1] == SR


def test_too_long(tmp_path: Path) -> None:
    p = tmp_path / "long.wav"
    audio.write(p, _stereo(3.0), sr=SR)
    with pytest.raises(AudioError, match="exceeds the limit of 2.0 s"):
        audio.load(p, max_duration_s=2.0)


def _encode_mp3(tmp_path: Path, name: str, args: list[str]) -> Path:
    """A 12 s stereo tone encoded by lame (or ffmpeg) with ``args``."""
    import shutil
    import subprocess

    tool = args[0]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/setup.sh --dev installs it)")
    wav = tmp_path / "src.wav"
    audio.write(wav, _stereo(12.0), sr=SR, subtype="PCM_16")
    out = tmp_path / name
    cmd = [*args[:1], *(a.format(src=wav, out=out) for a in args[1:])]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


MP3_ENCODINGS = {
    "cbr_xing": ["lame", "--quiet", "-b", "128", "{src}", "{out}"],
    "vbr_xing": ["lame", "--quiet", "-V", "4", "{src}", "{out}"],
    # -t: no Xing/LAME header, so the frame count in the header is a bitrate estimate
    "cbr_no_xing": ["lame", "--quiet", "-t", "-b", "128", "{src}", "{out}"],
    # VBR without a Xing header: libsndfile estimates ~3 s from the first frame's bitrate and
    # stops there; the frame walk sees 12 s and libav decodes all of it
    "vbr_no_xing": ["lame", "--quiet", "-t", "-V", "4", "{src}", "{out}"],
    "cbr_id3v2": ["lame", "--quiet", "-b", "192", "--add-id3v2", "--tt", "x", "{src}", "{out}"],
    "ffmpeg_id3v2": ["ffmpeg", "-loglevel", "error", "-y", "-i", "{src}", "-id3v2_version", "3",
                     "-metadata", "title=Mike's Gtr", "{out}"],
}  # fmt: skip


@pytest.mark.parametrize("encoding", sorted(MP3_ENCODINGS))
def test_real_world_mp3s_decode(tmp_path: Path, encoding: str) -> None:
    """Encoder delay, padding and header estimates never get a whole MP3 refused."""
    path = _encode_mp3(tmp_path, f"{encoding}.mp3", MP3_ENCODINGS[encoding])
    hdr = audio.info(path)
    whole = audio.load(path)  # the whole file, whatever the header estimated
    assert abs(whole.duration_s - 12.0) < 0.2
    last = audio.load(path, start_s=10.0, end_s=hdr.duration_s)  # the last region too
    assert last.samples.shape[1] > 1.5 * SR
    spec = np.abs(np.fft.rfft(whole.samples[0, : 2 * SR]))
    assert abs(np.argmax(spec) / 2 - 440) <= 2


def test_header_estimate_mismatch_is_really_exercised(tmp_path: Path) -> None:
    """The no-Xing MP3 really declares more frames than it holds (else the test above is moot)."""
    import soundfile as sf

    path = _encode_mp3(tmp_path, "a.mp3", MP3_ENCODINGS["cbr_no_xing"])
    with sf.SoundFile(str(path)) as f:
        estimated = f.frames
        decoded = f.read(dtype="float32").shape[0]
    assert estimated > decoded
    assert audio.info(path).frames == decoded


def test_mpeg_frame_walk_counts_every_frame(tmp_path: Path) -> None:
    path = _encode_mp3(tmp_path, "a.mp3", MP3_ENCODINGS["vbr_no_xing"])
    walked = audio.mpeg_frames(path)
    # 12 s plus the encoder's delay and padding, in whole 1152-sample frames
    assert walked % 1152 == 0 and 12.0 * SR <= walked <= 12.0 * SR + 3 * 1152
    assert audio.info(path).frames == walked


@pytest.mark.parametrize("encoding", ["cbr_xing", "vbr_xing", "ffmpeg_id3v2"])
def test_really_truncated_mp3_is_refused(tmp_path: Path, encoding: str) -> None:
    path = _encode_mp3(tmp_path, "whole.mp3", MP3_ENCODINGS[encoding])
    cut = tmp_path / "cut.mp3"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(AudioError, match="truncated"):
        audio.load(cut)


def _ffmpeg(*codec: str) -> list[str]:
    return ["ffmpeg", "-loglevel", "error", "-y", "-i", "{src}", *codec, "{out}"]


LIBAV_ENCODINGS = {
    "aac.m4a": _ffmpeg("-c:a", "aac"),
    "alac.m4a": _ffmpeg("-c:a", "alac"),
    "aac_faststart.mp4": _ffmpeg("-c:a", "aac", "-movflags", "+faststart"),
    "opus.opus": _ffmpeg("-c:a", "libopus"),
    "opus_in.ogg": _ffmpeg("-c:a", "libopus"),  # Opus under the .ogg suffix
}


@pytest.fixture
def libav_opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names every :class:`engine.audio.LibavReader` is opened with, from now on."""
    opened: list[str] = []

    class Spy(audio.LibavReader):
        def __init__(self, source: Any, *, name: str | None = None) -> None:
            opened.append(name or str(source))
            super().__init__(source, name=name)

    monkeypatch.setattr(audio, "LibavReader", Spy)
    return opened


@pytest.mark.parametrize("name", sorted(LIBAV_ENCODINGS))
def test_mp4_and_opus_decode_whole_with_libav(
    tmp_path: Path, name: str, libav_opened: list[str]
) -> None:
    """AAC and ALAC in MP4 (libsndfile reads neither) and Opus (libsndfile 1.2 calls some
    encoders' Opus files malformed) decode whole with libav, in regions and through an open
    descriptor (the server's way), aligned with what was encoded."""
    path = _encode_mp3(tmp_path, name, LIBAV_ENCODINGS[name])
    hdr = audio.info(path)
    assert (hdr.format, hdr.subtype) == (
        ("OGG", "OPUS") if "opus" in name else ("MP4", name.split(".")[0].split("_")[0].upper())
    )
    whole = audio.load(path)
    assert whole.samples.shape[0] == 2
    assert abs(whole.duration_s - 12.0) < 0.1
    sr = whole.sr
    region = audio.load(path, start_s=4.0, end_s=6.0)
    np.testing.assert_array_equal(region.samples, whole.samples[:, 4 * sr : 6 * sr])
    with path.open("rb") as f:
        held = audio.load(path, start_s=4.0, end_s=6.0, file=f)
    np.testing.assert_array_equal(held.samples, region.samples)
    src = _stereo(12.0)
    if name.startswith("alac"):  # lossless: the 16-bit source itself
        np.testing.assert_allclose(whole.samples, src, atol=1e-4)
    elif sr == SR:  # no priming samples left in front: in phase with the source
        r = np.corrcoef(whole.samples[0, SR : 2 * SR], src[0, SR : 2 * SR])[0, 1]
        assert r > 0.99
    spec = np.abs(np.fft.rfft(whole.samples[0, :sr]))
    assert abs(np.argmax(spec) - 440) <= 2
    assert set(libav_opened) == {str(path)}  # header and samples alike


def test_libav_files_are_checked_against_their_stated_length_and_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _encode_mp3(tmp_path, "a.m4a", LIBAV_ENCODINGS["aac.m4a"])
    with pytest.raises(AudioError, match=r"duration 12\.0 s exceeds the limit of 5\.0 s"):
        audio.load(path, max_duration_s=5.0)  # refused before it is decoded

    class Longer(audio.LibavReader):  # a container stating twice what its stream holds
        def __init__(self, source: Any, *, name: str | None = None) -> None:
            super().__init__(source, name=name)
            assert self.stated_frames is not None
            self.stated_frames *= 2

    monkeypatch.setattr(audio, "LibavReader", Longer)
    with pytest.raises(AudioError, match="truncated: its header states"):
        audio.info(tmp_path / "a.m4a")


def test_opus_in_ogg_that_libsndfile_cannot_open_goes_to_libav(tmp_path: Path) -> None:
    """An Ogg file libsndfile refuses outright (here its Opus headers alone) is tried with
    libav when its first page says Opus."""
    path = _encode_mp3(tmp_path, "a.ogg", LIBAV_ENCODINGS["opus_in.ogg"])
    data = path.read_bytes()
    pages = [i for i in range(len(data) - 3) if data[i : i + 4] == b"OggS"]
    heads = tmp_path / "heads.ogg"
    heads.write_bytes(data[: pages[2]])  # OpusHead and OpusTags, no audio
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(heads))
    with pytest.raises(AudioError, match="heads.ogg: libav"):
        audio.info(heads)


def test_broken_mp4s_are_refused(tmp_path: Path) -> None:
    import shutil
    import subprocess

    at_end = _encode_mp3(tmp_path, "a.m4a", LIBAV_ENCODINGS["aac.m4a"])
    cut = tmp_path / "cut.m4a"  # its index (moov) comes after the audio: gone
    cut.write_bytes(at_end.read_bytes()[: at_end.stat().st_size * 6 // 10])
    with pytest.raises(AudioError, match="libav cannot open it"):
        audio.info(cut)
    up_front = _encode_mp3(tmp_path, "b.mp4", LIBAV_ENCODINGS["aac_faststart.mp4"])
    cut.write_bytes(up_front.read_bytes()[: up_front.stat().st_size * 6 // 10])
    with pytest.raises(AudioError, match="truncated"):
        audio.load(cut)
    assert shutil.which("ffmpeg")
    video = tmp_path / "video.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=black:s=16x16:d=1",
         "-c:v", "mpeg4", str(video)],
        check=True,
    )  # fmt: skip
    with pytest.raises(AudioError, match="no audio stream"):
        audio.load(video)


def _mono_file(path: Path, y: np.ndarray, *, sr: int = 22050) -> Path:
    sf.write(path, y, sr, subtype="FLOAT")
    return path


def test_channel_files_join_into_one_region_holding_both(tmp_path: Path) -> None:
    # Ardour keeps a stereo region as one mono file a channel: A4 on the left, E5 on the right
    sr = 22050
    left = _mono_file(tmp_path / "Keys%L.wav", tone(440.0, 2.0, sr=sr, harmonics=1))
    right = _mono_file(tmp_path / "Keys%R.wav", tone(659.25, 2.0, sr=sr, harmonics=1))
    clips = [audio.load(p, start_s=0.5, end_s=1.5) for p in (left, right)]
    joined = audio.join_channels(clips)
    assert joined.samples.shape == (2, sr) and joined.sr == sr and joined.start_s == 0.5
    assert joined.path == str(left)
    np.testing.assert_array_equal(joined.samples[1], clips[1].samples[0])
    spectrum = np.abs(np.fft.rfft(audio.to_mono(joined.samples)))
    peaks = sorted(np.argsort(spectrum)[-2:])  # 1 Hz bins: 1 s at sr
    assert [round(p) for p in peaks] == [440, 659], peaks
    # what one interleaved stereo file of the two channels decodes to
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, joined.samples.T, sr, subtype="FLOAT")
    np.testing.assert_array_equal(audio.load(stereo).samples, joined.samples)


def test_channel_files_of_another_rate_or_length_are_refused(tmp_path: Path) -> None:
    y = tone(440.0, 2.0)
    main = audio.info(_mono_file(tmp_path / "L.wav", y))
    audio.check_alike(main, audio.info(_mono_file(tmp_path / "R.wav", y)))
    rate = audio.info(_mono_file(tmp_path / "R48.wav", y, sr=48000))
    with pytest.raises(AudioError, match=r"R48\.wav: sample rate 48000 Hz differs from .*22050"):
        audio.check_alike(main, rate)
    short = audio.info(_mono_file(tmp_path / "Rshort.wav", y[:-100]))
    with pytest.raises(AudioError, match=r"Rshort\.wav: length 44000 frames .* 44100 frames"):
        audio.check_alike(main, short)
