"""engine.audio: every format reads, regions slice exactly, bad input raises AudioError."""

from __future__ import annotations

from pathlib import Path

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
