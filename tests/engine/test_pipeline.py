"""engine.pipeline end to end with the lite backend on synthesized songs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import backends, presets
from engine.backends.base import Backend
from engine.errors import AudioError, InvalidRequest
from engine.pipeline import Annotator, Cancelled, parse_regions, plan_regions
from engine.store import Store
from engine.types import Region
from tests.engine.helpers import song
from tests.synth import progression


@pytest.fixture(scope="module")
def song_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return song(tmp_path_factory.mktemp("audio") / "song.wav")


@pytest.fixture(scope="module")
def backend() -> Backend:
    """The lite backend, tagger loaded once for the module."""
    return backends.create(presets.load("lite"))


@pytest.fixture
def annotator(tmp_path: Path, backend: Backend) -> Annotator:
    return Annotator(presets.load("lite"), store=Store(tmp_path / "s.sqlite3"), backend=backend)


def test_plan_and_parse_regions() -> None:
    assert plan_regions(25.0, length_s=10.0, min_tail_s=5.0) == [
        Region(0, 10),
        Region(10, 20),
        Region(20, 25),
    ]
    # an 11 s song is one region, a 0.5 s tail joins the region before it
    assert plan_regions(11.0, length_s=10.0, min_tail_s=5.0) == [Region(0, 11)]
    assert plan_regions(20.5, length_s=10.0, min_tail_s=5.0) == [Region(0, 10), Region(10, 20.5)]
    assert plan_regions(3.0, length_s=10.0, min_tail_s=5.0) == [Region(0, 3)]
    assert plan_regions(30.0, length_s=10.0, min_tail_s=5.0) == [
        Region(0, 10),
        Region(10, 20),
        Region(20, 30),
    ]
    with pytest.raises(InvalidRequest, match="duration_s=0"):
        plan_regions(0.0, length_s=10.0, min_tail_s=5.0)
    assert parse_regions("0-12.5, 12.5-40") == [Region(0, 12.5), Region(12.5, 40)]
    with pytest.raises(InvalidRequest, match="'12.5' is not 'start-end'"):
        parse_regions("0-5,12.5")


def test_whole_file(annotator: Annotator, song_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    result = annotator.annotate(str(song_path), progress=lambda s, d, t: calls.append((s, d, t)))
    a, b, c = result.regions
    # one 10 s region in A minor is evidence, not a modulation: the track keeps one key, the
    # one its chords circle (C-F-G and A minor's own dominant E: A minor), and each region's
    # own estimate is kept beside it
    assert a.key is not None and b.key is not None and a.key.key == b.key.key == "A minor"
    assert a.region_key is not None and a.region_key.key == "C major"
    assert b.region_key is not None and b.region_key.key == "A minor"
    assert a.tempo_bpm == pytest.approx(120.0, rel=0.02)
    assert a.loudness_lufs is not None and b.loudness_lufs is not None
    # the second part is the same material at -12 dB, in another key (K-weighting differs a little)
    assert a.loudness_lufs - b.loudness_lufs == pytest.approx(12.0, abs=1.0)
    assert c.silent and c.key is None and c.tempo_bpm is None and c.caption == "Silence."
    assert "A minor" in a.caption and "120 BPM" in a.caption
    assert "key moves" not in result.narrative.text
    # told by the form: the silence is a section of its own
    assert re.search(r"0:20-0:30 [^:;]*: silence", result.narrative.text), result.narrative.text
    assert ("analyze", 3, 3) in calls


def test_cache_hit_returns_identical_results(annotator: Annotator, song_path: Path) -> None:
    first = annotator.annotate(str(song_path))
    calls: list[tuple[str, int, int]] = []
    second = annotator.annotate(str(song_path), progress=lambda s, d, t: calls.append((s, d, t)))
    assert second == first
    assert not [c for c in calls if c[0] == "analyze"]  # nothing re-analysed
    assert annotator.store is not None and annotator.store.count() == 3


def test_no_cache_recomputes(annotator: Annotator, song_path: Path) -> None:
    annotator.annotate(str(song_path), [Region(0, 10)])
    calls: list[str] = []
    annotator.annotate(
        str(song_path), [Region(0, 10)], use_cache=False, progress=lambda s, d, t: calls.append(s)
    )
    assert "analyze" in calls


def test_user_regions_keep_names(annotator: Annotator, song_path: Path) -> None:
    r = annotator.annotate(str(song_path), [Region(2.0, 8.0, "verse")]).regions[0]
    assert (r.start_s, r.end_s, r.name) == (2.0, 8.0, "verse")


def test_bad_regions(annotator: Annotator, song_path: Path) -> None:
    with pytest.raises(AudioError, match="outside the file"):
        annotator.annotate(str(song_path), [Region(25.0, 40.0)])
    with pytest.raises(InvalidRequest, match="minimum is 0.25 s"):
        annotator.annotate(str(song_path), [Region(1.0, 1.1)])


def test_cancel(annotator: Annotator, song_path: Path) -> None:
    with pytest.raises(Cancelled):
        annotator.annotate(str(song_path), cancelled=lambda: True)


def test_lite_tags_sounding_regions_only(annotator: Annotator, song_path: Path) -> None:
    a, b, c = annotator.annotate(str(song_path)).regions
    for r in (a, b):
        assert r.vocals is not None and sum(r.vocals.probabilities) == pytest.approx(1.0, abs=1e-3)
        assert all(0.0 <= t.score <= 1.0 for t in r.instruments + r.genres + r.moods)
    assert c.vocals is None and c.instruments == ()


def test_lite_tags_on_its_worker_thread_as_the_tagger_does(backend: Backend) -> None:
    """Tags computed beside the signal analysis equal the tagger's own; a region that is
    silent by loudness (a 200 Hz tone peaking at -58 dBFS: over the -60 dBFS peak floor, under
    -60 LUFS) is tagged on the worker and its tags dropped; digital silence is never sent."""
    from engine.audio import Audio, resample, to_mono
    from engine.backends.base import Segment

    sr = 22050
    rng = np.random.default_rng(3)
    chords = progression("C", "major", sr=sr, chord_s=1.25, repeats=2)[: 10 * sr]
    t = np.arange(10 * sr) / sr
    quiet = (10 ** (-58 / 20) * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32)
    noisy = 0.2 * rng.standard_normal(8 * sr).astype(np.float32)
    clips = [chords, quiet, np.zeros(5 * sr, np.float32), noisy]
    segments = [
        Segment(Region(10.0 * i, 10.0 * i + c.size / sr), Audio(c[None, :], sr, "test.wav"))
        for i, c in enumerate(clips)
    ]
    anns = backend.analyze(segments)
    assert [a.silent for a in anns] == [False, True, True, False]
    assert anns[1].vocals is None and anns[1].instruments == () and anns[2].vocals is None
    tagger = backend.tagger  # type: ignore[attr-defined]
    direct = tagger.tag(
        [
            resample(to_mono(s.audio.samples), sr=sr, target_sr=tagger.sr)
            for s in (segments[0], segments[3])
        ]
    )
    for ann, t in zip((anns[0], anns[3]), direct, strict=True):
        assert ann.vocals == t.vocals
        assert (ann.instruments, ann.genres, ann.moods) == (t.instruments, t.genres, t.moods)


def test_a_region_kept_as_one_file_a_channel_is_analysed_from_every_file(
    annotator: Annotator, tmp_path: Path
) -> None:
    # left silent, a C major cadence on the right: the left file alone is silence
    right = progression("C", "major")
    silent = tmp_path / "Keys%L.wav"
    loud = tmp_path / "Keys%R.wav"
    sf.write(silent, np.zeros_like(right), 22050, subtype="FLOAT")
    sf.write(loud, right, 22050, subtype="FLOAT")
    region = [Region(0.0, 8.0)]
    alone = annotator.annotate(str(silent), region, narrate=False).regions[0]
    assert alone.silent
    both = annotator.annotate(str(silent), region, narrate=False, channels=[str(loud)])
    ann = both.regions[0]
    assert not ann.silent and ann.key is not None and ann.key.key == "C major"
    assert both.source == str(silent)
    # the cache key follows the joined samples: the same two channels in one interleaved
    # file are a cache hit, and the same annotation
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([np.zeros_like(right), right], axis=1), 22050, subtype="FLOAT")
    stored = annotator.store.count() if annotator.store else 0
    again = annotator.annotate(str(stereo), region, narrate=False).regions[0]
    assert again == ann
    assert annotator.store is not None and annotator.store.count() == stored
