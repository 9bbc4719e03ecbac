"""Keys on drum kits alone: "no clear key" where no instrument plays a pitch.

Renders with fluidsynth (FluidR3 GM), 30 s each at 16 kHz, into ``bench/data/drum_keys``
(git-ignored; files that exist are not rendered again):

- **drum kits alone** (24, no key): four GM kits (Standard, Room, Power, TR-808) x three
  patterns (rock with a crash and tom fills, metal with a double kick, a ride on eighths and
  a second crash every half note, a breakbeat) x dry or saturated (tanh, as a drum bus is driven);
- **bands** (8, known keys): overdriven or distorted guitar power chords, bass and drums,
  saturated, in major and minor keys (power chords carry no third: the mode rests on the
  progression, I-VI-IV-V or i-VI-VII-V);
- **melodies alone** (8, known keys): one line on trumpet, flute, violin or clarinet, no
  accompaniment: what a region without chords and with a key sounds like;
- **bass and drums** (12, no key): a bass line alone over a drum loop (fingered, picked,
  fretless, slap and two synth basses; eighths, syncopated sixteenths or a walk, over the
  progression of the bands), dry or saturated: a drum-and-bass stem, whose bass's overtones
  the chord recogniser would read as chords.

Every render goes through the ``lite`` backend in 10 s regions with the track's chords, as
``sonicverse annotate`` runs it (tagger off: keys do not read it), and is decoded over the
track three times in the same run: with one tonality threshold for every region
(``min_tonality_chordless`` = ``min_tonality``: the decoder before chords had a say on it),
as shipped, and as shipped without the lone-bass reading
(:func:`engine.analysis.frames.lone_bass`, analysed again with it off). Prints how many
renders of each kind are told "no clear key" and the key MIREX of the tonal ones. ``--fit``
adds a grid of ``min_tonality_chordless`` values. No tonal render
changes anywhere on it, so the renders set the floor (0.2 keys no more drum kits than 0.35)
and the dev halves of the real sets the ceiling: the shipped value is the largest on the grid
under which no GTZAN dev clip and no Beatles dev song loses its key (``python bench/real.py
--gtzan DIR --gtzan-split dev --no-shared --chordless 0.3``: one clip does).

Usage::

    python bench/drum_keys.py [--out bench/data/drum_keys] [--fit]
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from common import annotated, table, track_key  # noqa: E402

from engine import presets  # noqa: E402
from engine.analysis import frames  # noqa: E402
from engine.labels import KEYS  # noqa: E402
from engine.track import resolve  # noqa: E402

SECONDS = 30.0
KITS = {"standard": 0, "room": 8, "power": 16, "tr808": 25}
PATTERNS = {"rock": 120.0, "metal": 170.0, "break": 90.0}
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
GRID = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4)


def drum_part(rng: np.random.Generator, bpm: float, pattern: str) -> list[tuple]:
    """(pitch, onset s, duration s, velocity) of a GM drum pattern, 30 s and a bar more."""
    step = 30.0 / bpm  # an eighth note
    events: list[tuple] = []
    for i in range(int(SECONDS / step) + 8):
        t = i * step
        jitter = int(rng.integers(-6, 6))
        if pattern == "rock":
            if i % 8 in (0, 3, 5):
                events.append((36, t, 0.1, 112 + jitter))  # kick
            if i % 4 == 2:
                events.append((38, t, 0.1, 108 + jitter))  # snare
            events.append((46 if i % 2 else 42, t, 0.05, 80 + jitter))  # hats
            if i % 32 == 0:
                events.append((49, t, 0.5, 110))  # crash
            if i % 32 >= 28:
                events.append(((50, 48, 45, 41)[i % 4], t, 0.1, 105))  # tom fill
        elif pattern == "metal":
            events.append((36, t, 0.05, 118 + jitter))  # double kick on sixteenths
            events.append((36, t + step / 2, 0.05, 114 + jitter))
            if i % 2 == 1:
                events.append((38, t, 0.1, 112 + jitter))
            events.append((51 if i % 4 else 57, t, 0.2, 100))  # ride; crash 2 every half note
        else:  # breakbeat
            if i % 8 in (0, 5):
                events.append((36, t, 0.1, 110 + jitter))
            if i % 8 in (2, 6, 7):
                events.append((38, t, 0.1, 100 if i % 8 != 7 else 70))
            events.append((42, t, 0.05, 70 + jitter))
            events.append((42, t + step / 2, 0.05, 45))
    return events


def band_parts(bpm: float, program: int, tonic: int, minor: bool) -> list[tuple[int, list[tuple]]]:
    """Power chords (root, fifth, octave) on eighths and the bass under them, I-VI-IV-V or
    i-VI-VII-V, a bar each."""
    step = 30.0 / bpm
    steps = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    degrees = (0, 5, 6, 4) if minor else (0, 5, 3, 4)
    guitar, bass = [], []
    for b in range(int(SECONDS / (8 * step)) + 2):
        root = tonic + steps[degrees[b % 4]]
        for i in range(8):
            t = (8 * b + i) * step
            guitar += [(root + 12 + iv, t, step * 0.9, 100) for iv in (0, 7, 12)]
            bass.append((root - 12, t, step * 0.9, 100))
    return [(program, guitar), (33, bass)]


def melody_part(
    rng: np.random.Generator, bpm: float, tonic: int, minor: bool
) -> list[tuple[int, float, float, int]]:
    """A stepwise tune in the key, phrases ending on the tonic or the fifth."""
    beat = 60.0 / bpm
    steps = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    scale = [tonic + 12 * (d // 7) + steps[d % 7] for d in range(-3, 11)]
    pos, t, events = 3, 0.0, []
    while t < SECONDS:
        for _ in range(7):
            pos = int(np.clip(pos + rng.choice((-2, -1, -1, 1, 1, 2)), 0, len(scale) - 1))
            dur = beat * float(rng.choice((0.5, 1.0, 1.0, 1.5)))
            events.append((scale[pos], t, dur * 0.9, 90))
            t += dur
        pos = 3 if rng.random() < 0.6 else 7  # the phrase ends on the tonic or its fifth
        events.append((scale[pos], t, 2 * beat * 0.9, 90))
        t += 2 * beat
    return events


def bass_part(
    rng: np.random.Generator, bpm: float, tonic: int, minor: bool, style: str
) -> list[tuple[int, float, float, int]]:
    """A bass line alone over the bands' progression, a bar a chord: ``eighths`` (root,
    octave, fifth), ``riff`` (syncopated sixteenths with rests) or ``walk`` (quarters through
    the scale)."""
    step = 30.0 / bpm
    steps = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    degrees = (0, 5, 6, 4) if minor else (0, 5, 3, 4)
    events: list[tuple[int, float, float, int]] = []
    for b in range(int(SECONDS / (8 * step)) + 2):
        root, t0 = tonic + steps[degrees[b % 4]], 8 * b * step
        if style == "eighths":
            for i, iv in enumerate((0, 0, 12, 0, 7, 0, 12, 10 if minor else 7)):
                events.append((root + iv, t0 + i * step, step * 0.85, 100))
        elif style == "riff":
            for i in range(16):
                if rng.random() < 0.55 or i in (0, 6, 10):
                    iv = int(rng.choice((0, 0, 0, 7, 12, -2 if minor else -1, 3 if minor else 4)))
                    events.append((root + iv, t0 + i * step / 2, step * 0.45, 100))
        else:
            d0 = degrees[b % 4]
            for i in range(4):
                d = d0 + int(rng.choice((0, 1, 2, -1)))
                pitch = tonic + 12 * (d // 7) + steps[d % 7]
                events.append((pitch, t0 + 2 * i * step, 2 * step * 0.9, 100))
    return events


def render_set(out: Path) -> list[tuple[Path, str, str | None]]:
    """(wav, kind, key or None) of every render, rendering those missing."""
    import make_vocal_set as kit

    if shutil.which("fluidsynth") is None or not Path(kit.SOUNDFONT).is_file():
        sys.exit(f"needs the fluidsynth binary and {kit.SOUNDFONT} (apt install fluidsynth)")
    kit.CLIP_S = SECONDS
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    plan: list[tuple[str, str, str | None, list, bool]] = []
    for pattern, bpm in PATTERNS.items():
        for kit_name, number in KITS.items():
            parts = [(-1 - number, drum_part(rng, bpm, pattern))]
            for drive in (False, True):
                name = f"drums_{pattern}_{kit_name}_{'driven' if drive else 'dry'}"
                plan.append((name, "drum kits alone", None, parts, drive))
    for k in range(8):
        tonic, minor, bpm = 40 + int(rng.integers(12)), k % 3 != 0, float(rng.integers(100, 180))
        parts = band_parts(bpm, 29 + k % 2, tonic, minor)
        parts.append((-1, drum_part(rng, bpm, "rock" if k % 2 else "metal")))
        key = f"{NAMES[tonic % 12]} {'minor' if minor else 'major'}"
        plan.append((f"band_{k}", "bands", key, parts, True))
    for k, program in enumerate((56, 73, 40, 71) * 2):  # trumpet, flute, violin, clarinet
        tonic, minor, bpm = 60 + int(rng.integers(12)), k % 2 == 1, float(rng.integers(70, 130))
        key = f"{NAMES[tonic % 12]} {'minor' if minor else 'major'}"
        plan.append(
            (
                f"melody_{k}",
                "melodies alone",
                key,
                [(program, melody_part(rng, bpm, tonic, minor))],
                False,
            )
        )
    for k in range(12):
        program, style = (33, 34, 36, 38, 39, 35)[k % 6], ("eighths", "riff", "walk")[k % 3]
        tonic, minor, bpm = 28 + int(rng.integers(12)), k % 2 == 0, float(rng.integers(90, 176))
        kit_number, pattern = (0, 16, 25)[k % 3], ("rock", "metal", "break")[k % 3]
        parts = [
            (program, bass_part(rng, bpm, tonic, minor, style)),
            (-1 - kit_number, drum_part(rng, bpm, pattern)),
        ]
        plan.append((f"bassdrums_{k}", "bass and drums", None, parts, k % 4 >= 2))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, key, parts, drive in plan:
            wav = out / f"{name}.wav"
            if not wav.exists():
                y = kit.render(parts, Path(tmp)).astype(np.float64)
                if drive:
                    y = np.tanh(6.0 * y / (np.abs(y).max() + 1e-9))
                sf.write(wav, (0.5 * y / (np.abs(y).max() + 1e-9)).astype(np.float32), kit.SR)
            rows.append((wav, kind, key))
    with open(out / "renders.csv", "w", newline="") as f:
        csv.writer(f).writerows(
            [("file", "kind", "key")] + [(w.name, k, key or "") for w, k, key in rows]
        )
    return rows


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench/data/drum_keys")
    ap.add_argument("--fit", action="store_true", help="print a grid of min_tonality_chordless")
    args = ap.parse_args()

    from key_accuracy import mirex_score

    from engine import backends
    from engine.audio import load, to_mono

    rows = render_set(args.out)
    preset = presets.load("lite")
    backend = backends.create(replace(preset, options=replace(preset.options, tag=False)))
    clips = [(kind, key, wav.name, load(wav)) for wav, kind, key in rows]
    raws = [(k, key, annotated(backend, to_mono(c.samples), c.sr, n)) for k, key, n, c in clips]
    shipped_low = frames.LONE_BASS_LOW
    frames.LONE_BASS_LOW = 2.0  # no block is ever a lone bass: the chords as they were
    try:
        raws_off = [
            (k, key, annotated(backend, to_mono(c.samples), c.sr, n)) for k, key, n, c in clips
        ]
    finally:
        frames.LONE_BASS_LOW = shipped_low
    backend.close()

    shipped = preset.track.min_tonality_chordless
    settings = [("min_tonality everywhere (before)", preset.track.min_tonality, raws)]
    settings.append((f"{shipped:g}, without the lone bass", shipped, raws_off))
    grid = GRID if args.fit else (shipped,)
    settings += [(f"{v:g}" + (" (shipped)" if v == shipped else ""), v, raws) for v in grid]
    kinds = list(dict.fromkeys(kind for kind, _, _ in raws))
    out = []
    for label, value, analysed in settings:
        cfg = replace(preset.track, min_tonality_chordless=value)
        told: dict[str, list[tuple[str | None, str | None]]] = {kind: [] for kind in kinds}
        for kind, key, raw in analysed:
            est = track_key(resolve(raw, settings=cfg, analysis=preset.analysis).annotations)
            told[kind].append((key, est))
        cells = [label]
        for kind in kinds:
            pairs = told[kind]
            none = sum(est is None for _, est in pairs)
            cells.append(f"{none}/{len(pairs)}")
            if pairs[0][0] is not None:
                scores = [mirex_score(k, e) if e in KEYS else 0.0 for k, e in pairs]  # type: ignore[arg-type]
                cells.append(f"{np.mean(scores):.3f}")
        out.append(cells)
    header = ["min_tonality_chordless"]
    for kind in kinds:
        header.append(f"{kind}: no clear key")
        if kind not in ("drum kits alone", "bass and drums"):
            header.append(f"{kind}: key MIREX")
    print(f"\n{len(raws)} GM renders (FluidR3), 30 s, 10 s regions, decoded over the track")
    print(table(header, out))


if __name__ == "__main__":
    main()
