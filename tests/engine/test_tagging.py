"""The musicnn tagger: vocals on rendered choir vs piano, padding, batching, tag tables."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import AudioError, PresetError
from engine.tagging import (
    SHORT_REGION_FLAG,
    Tagger,
    TaggerSettings,
    TagResult,
    table_coverage,
)

SR = 16000
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


@functools.cache
def tagger() -> Tagger:
    return Tagger.load(TaggerSettings())


def render(program: int, tmp_path: Path, *, seconds: float = 6.0) -> np.ndarray:
    """C-F-G-C triads held for 1.5 s each on one General MIDI program, 16 kHz mono."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        pytest.skip("needs the fluidsynth binary and the FluidR3_GM soundfont (apt fluidsynth)")
    music21 = pytest.importorskip("music21", reason="music21 writes the MIDI file")
    import soundfile as sf

    part = music21.stream.Part()
    inst = music21.instrument.Instrument()
    inst.midiProgram = program
    part.insert(0, inst)
    part.insert(0, music21.tempo.MetronomeMark(number=60))
    for i, triad in enumerate(([48, 52, 55], [53, 57, 60], [55, 59, 62], [48, 52, 55])):
        part.insert(1.5 * i, music21.chord.Chord(triad, quarterLength=1.5))
    mid, wav = tmp_path / f"p{program}.mid", tmp_path / f"p{program}.wav"
    music21.stream.Score([part]).write("midi", fp=mid)
    subprocess.run(
        ["fluidsynth", "-ni", "-g", "0.6", "-r", str(SR), "-F", str(wav), str(SOUNDFONT), str(mid)],
        check=True,
        capture_output=True,
    )
    y, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    assert sr == SR
    return y.mean(axis=1)[: int(seconds * SR)]


def tone(freq_hz: float, seconds: float, *, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_choir_is_not_called_no_vocals_and_piano_is(tmp_path: Path) -> None:
    choir, piano = render(52, tmp_path), render(0, tmp_path)  # GM 53 Choir Aahs, GM 1 Piano
    res_choir, res_piano = tagger().tag([choir, piano])
    assert res_choir.vocals.label != "none", res_choir.vocals
    assert res_piano.vocals.label == "none", res_piano.vocals
    assert res_choir.vocals.probabilities[0] < 0.5 < res_piano.vocals.probabilities[0]
    assert "piano" in [t.label for t in res_piano.instruments]


def test_synthesized_speech_is_not_called_no_vocals(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs the espeak-ng binary (apt espeak-ng)")
    import soundfile as sf
    import soxr

    wav = tmp_path / "speech.wav"
    text = "Please remember to water the plants on the balcony before you leave for work."
    subprocess.run(["espeak-ng", "-v", "en+f2", "-w", str(wav), text], check=True)
    y, sr = sf.read(str(wav), dtype="float32")
    speech = soxr.resample(y, sr, SR).astype(np.float32)
    res = tagger().tag([speech])[0]
    assert res.vocals.label != "none", res.vocals


def test_vocal_probabilities_sum_to_one_and_match_the_label() -> None:
    rng = np.random.default_rng(0)
    results = tagger().tag([tone(220, 4.0), 0.1 * rng.standard_normal(SR * 4).astype(np.float32)])
    for res in results:
        p_none, p_male, p_female = res.vocals.probabilities
        assert p_none + p_male + p_female == pytest.approx(1.0, abs=1e-3)
        if res.vocals.label == "none":
            assert p_none > 0.5
        else:
            assert p_none <= 0.5
            assert (res.vocals.label == "female") == (p_female >= p_male)


def test_short_regions_are_padded_and_flagged() -> None:
    every = Tagger(TaggerSettings(max_patches=0), tagger().models)
    short, long = every.tag([tone(440, 1.0), tone(440, 10.0)])
    assert short.flags == (SHORT_REGION_FLAG,)
    assert short.patches == 1
    assert long.flags == ()
    assert long.patches == 3  # round(10 s / 3 s) patches spread over the region
    capped = Tagger(TaggerSettings(max_patches=2), every.models).tag([tone(440, 10.0)])[0]
    assert capped.patches == 2
    default = tagger().tag([tone(440, 10.0)])[0]
    assert default.patches == TaggerSettings().max_patches == 1  # the middle 3 s
    # a call may ask for more (a region asked for alone: max_patches_alone, 2 by default)
    assert tagger().tag([tone(440, 10.0)], max_patches=0)[0].patches == 3
    assert tagger().tag([tone(440, 10.0)], max_patches=2)[0].patches == 2
    # a region asked for alone, without a track's decoding to steady it, hears two
    assert TaggerSettings().max_patches_alone == 2


def test_a_region_asked_for_alone_is_tagged_on_max_patches_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from engine import presets
    from engine.audio import write
    from engine.pipeline import Annotator
    from engine.store import Store
    from engine.types import Region

    shipped = presets.load("lite")
    every = replace(shipped.options.tagger, max_patches_alone=0)
    preset = replace(shipped, options=replace(shipped.options, tagger=every))
    annotator = Annotator(preset, store=Store(tmp_path / "store.sqlite3"))
    heard: list[int | None] = []
    real = Tagger.tag

    def spy(self: Tagger, regions: list, *, max_patches: int | None = None) -> list:
        out = real(self, regions, max_patches=max_patches)
        heard.extend(r.patches for r in out)
        return out

    monkeypatch.setattr(Tagger, "tag", spy)
    path = tmp_path / "tone.wav"
    write(path, np.tile(tone(220, 2.0), 10), sr=SR)
    annotator.annotate(str(path), [Region(0.0, 10.0, "alone")], narrate=False)
    assert heard == [3]  # a DAW's region request: all of it
    heard.clear()
    annotator.annotate(str(path), [Region(0.0, 10.0, "a"), Region(10.0, 20.0, "b")])
    assert heard == [1, 1]  # decoded over the track: the preset's one patch each
    heard.clear()
    annotator.annotate(str(path), [Region(0.0, 10.0, "alone")], narrate=False)
    assert heard == []  # the lone region's own analysis, remembered under its own key
    # the panel's regions are its track's: asked one by one, then narrated from the store
    heard.clear()
    path2 = tmp_path / "other.wav"
    write(path2, np.concatenate([tone(330, 10.0), tone(495, 10.0)]), sr=SR)
    spans = [Region(0.0, 10.0, "a"), Region(10.0, 20.0, "b")]
    for r in spans:
        annotator.annotate(str(path2), [r], narrate=False, in_track=True)
    assert heard == [1, 1]
    annotator.annotate(str(path2), spans)
    assert heard == [1, 1]  # nothing tagged again
    # shipped, a region alone hears two patches and is stored apart from the track's
    shipped_annotator = Annotator(shipped, store=Store(tmp_path / "shipped.sqlite3"))
    heard.clear()
    shipped_annotator.annotate(str(path2), [spans[0]], narrate=False)
    shipped_annotator.annotate(str(path2), spans)
    assert heard == [2, 1, 1]
    # where a region alone is tagged as the track's are, it is stored with them
    same = replace(shipped.options.tagger, max_patches_alone=shipped.options.tagger.max_patches)
    plain = Annotator(
        replace(shipped, options=replace(shipped.options, tagger=same)),
        store=Store(tmp_path / "plain.sqlite3"),
    )
    heard.clear()
    plain.annotate(str(path2), [spans[0]], narrate=False)
    plain.annotate(str(path2), spans)
    assert heard == [1, 1]  # the narrative tagged only the second region


def test_batching_many_regions_equals_one_by_one() -> None:
    rng = np.random.default_rng(1)
    regions = [
        tone(110 * (i + 1), seconds, amp=0.2) + 0.05 * rng.standard_normal(int(seconds * SR))
        for i, seconds in enumerate((1.0, 3.0, 4.5, 7.0))
    ]
    regions = [r.astype(np.float32) for r in regions]
    every = Tagger(TaggerSettings(max_patches=0), tagger().models)
    together = every.tag(regions)
    alone = [every.tag([r])[0] for r in regions]
    assert [r.patches for r in together] == [1, 1, 2, 2]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(
            [a.scores[k] for k in sorted(a.scores)],
            [b.scores[k] for k in sorted(b.scores)],
            atol=1e-5,
        )
        assert a.vocals.label == b.vocals.label
        assert [t.label for t in a.instruments] == [t.label for t in b.instruments]


def test_bad_regions_raise_audio_error() -> None:
    with pytest.raises(AudioError, match="NaN"):
        tagger().tag([np.full(SR, np.nan, dtype=np.float32)])
    with pytest.raises(AudioError, match="region 1"):
        tagger().tag([tone(440, 1.0), np.zeros((2, SR), dtype=np.float32)])
    with pytest.raises(AudioError, match="non-empty"):
        tagger().tag([np.zeros(0, dtype=np.float32)])
    assert tagger().tag([]) == []


def test_every_source_tag_is_mapped() -> None:
    for name, model in tagger().models.items():
        assert table_coverage(name, model.tags) == [], name


def test_interpret_ranks_thresholds_and_caps_tags() -> None:
    t = Tagger(TaggerSettings(instrument_threshold=0.3, max_tags=2), tagger().models)
    scores = {
        "MTT_musicnn/piano": 0.9,
        "MTT_musicnn/guitar": 0.4,
        "MSD_musicnn/guitar": 0.6,  # the max of a label's source tags wins
        "MTT_musicnn/violin": 0.35,  # above threshold but cut by max_tags
        "MTT_musicnn/flute": 0.1,
        "MSD_musicnn/jazz": 0.8,
        "MSD_musicnn/sad": 0.5,
    }
    res = t.interpret(scores)
    assert isinstance(res, TagResult)
    assert [(x.label, x.score) for x in res.instruments] == [("piano", 0.9), ("guitar", 0.6)]
    assert [x.label for x in res.genres] == ["jazz"]
    assert [x.label for x in res.moods] == ["sad"]


@pytest.mark.parametrize(
    ("scores", "label"),
    [
        ({"MTT_musicnn/no vocals": 0.6, "MTT_musicnn/vocal": 0.05}, "none"),
        ({"MTT_musicnn/vocal": 0.7, "MTT_musicnn/female": 0.6, "MTT_musicnn/male": 0.1}, "female"),
        ({"MTT_musicnn/vocals": 0.7, "MSD_musicnn/male vocalists": 0.5}, "male"),
        # MSD's gender tags, when scored, overrule MTT's.
        (
            {
                "MTT_musicnn/vocal": 0.7,
                "MTT_musicnn/male": 0.6,
                "MSD_musicnn/female vocalists": 0.4,
                "MSD_musicnn/male vocalists": 0.05,
            },
            "female",
        ),
        (
            {"MTT_musicnn/choir": 0.95, "MSD_musicnn/instrumental": 0.5, "MTT_musicnn/man": 0.2},
            "male",
        ),
    ],
)
def test_vocal_rules(scores: dict[str, float], label: str) -> None:
    settings = TaggerSettings(vocal_threshold=0.1, choir_threshold=0.6, female_threshold=0.0)
    est = Tagger(settings, tagger().models).vocals(scores)
    assert est.label == label
    assert sum(est.probabilities) == pytest.approx(1.0, abs=1e-3)


def test_settings_validate_with_preset_errors() -> None:
    with pytest.raises(PresetError, match="MTT_musicnn"):
        TaggerSettings(models=("MTT_vgg",))
    with pytest.raises(PresetError, match="genre_threshold"):
        TaggerSettings(genre_threshold=1.5)
    with pytest.raises(PresetError, match="max_tags"):
        TaggerSettings(max_tags=-1)


def test_importing_tagging_does_not_import_torch() -> None:
    code = "import sys, engine.tagging; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_fingerprint_follows_settings_and_weights() -> None:
    base = tagger()
    same = Tagger(TaggerSettings(), base.models)
    other = Tagger(TaggerSettings(genre_threshold=0.5), base.models)
    assert len(base.fingerprint) == 16
    assert same.fingerprint == base.fingerprint != other.fingerprint
    from engine.models.musicnn import Musicnn

    tiny = Tagger(TaggerSettings(models=("MTT_musicnn",)), {"MTT_musicnn": Musicnn.tiny()})
    real = Tagger(
        TaggerSettings(models=("MTT_musicnn",)), {"MTT_musicnn": base.models["MTT_musicnn"]}
    )
    assert tiny.fingerprint != real.fingerprint


def test_runtimes_agree_on_the_shipped_models() -> None:
    """The shipped ONNX exports give the float PyTorch model's scores (parity bar: 1e-3)."""
    pytest.importorskip("onnxruntime")
    from engine.models.musicnn_onnx import OnnxMusicnn

    onnx = Tagger.load(TaggerSettings(runtime="onnx"))
    assert all(isinstance(m, OnnxMusicnn) for m in onnx.models.values())
    ref = Tagger.load(TaggerSettings(runtime="torch"))
    rng = np.random.default_rng(3)
    regions = [
        (tone(220, 10.0, amp=0.3) + 0.05 * rng.standard_normal(10 * SR)).astype(np.float32),
        tone(880, 2.0),
    ]
    for a, b in zip(onnx.tag(regions), ref.tag(regions), strict=True):
        np.testing.assert_allclose(
            [a.scores[k] for k in sorted(a.scores)],
            [b.scores[k] for k in sorted(b.scores)],
            atol=1e-4,
        )
        assert a.vocals == b.vocals and a.instruments == b.instruments


def test_runtime_is_validated_and_warm_up_runs() -> None:
    with pytest.raises(PresetError, match="runtime"):
        TaggerSettings(runtime="tensorflow")
    tagger().warm_up()


def test_networks_side_by_side_equal_one_after_the_other() -> None:
    """The two ONNX networks run on two threads; closing the tagger's pool runs them in turn,
    and the scores are the same to the bit."""
    t = Tagger.load(TaggerSettings(max_patches=0))
    if t._pool is None:
        pytest.skip("the networks run in PyTorch here (no onnxruntime): one after the other")
    rng = np.random.default_rng(5)
    regions = [tone(220, 7.0) + 0.05 * rng.standard_normal(7 * SR).astype(np.float32)]
    regions.append(tone(330, 10.0))
    side_by_side = t.tag(regions)
    t.close()
    in_turn = t.tag(regions)
    for a, b in zip(side_by_side, in_turn, strict=True):
        assert a.scores == b.scores
