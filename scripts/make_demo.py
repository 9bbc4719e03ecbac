"""Render the demo song the README's quickstart annotates: ``docs/demo/demo.flac``.

One-off; needs music21 (``pip install music21``), fluidsynth with the FluidR3 GM soundfont
and espeak-ng (``apt-get install fluidsynth fluid-soundfont-gm espeak-ng``).

Layout (45 s, 100 BPM, 44.1 kHz stereo):
    0:00-0:10  C major piano progression with a hi-hat/kick pattern
    0:10-0:20  same, with a spoken-sung voice (espeak-ng) on top
    0:20-0:30  E minor strings + piano, louder
    0:30-0:35  silence
    0:35-0:45  C major piano again, quiet
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 44100
BPM = 100.0
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def render_midi(
    chords: list[list[str]], program: int, seconds_per_chord: float, tmp: Path
) -> np.ndarray:
    """Render block chords with a GM program through fluidsynth, ``[frames]`` mono."""
    from music21 import chord, instrument, midi, stream, tempo

    part = stream.Part()
    part.insert(0, tempo.MetronomeMark(number=BPM))
    inst = instrument.instrumentFromMidiProgram(program)
    part.insert(0, inst)
    beats = seconds_per_chord * BPM / 60.0
    for names in chords:
        c = chord.Chord(names)
        c.quarterLength = beats
        part.append(c)
    mf = midi.translate.streamToMidiFile(part)
    mid = tmp / f"p{program}.mid"
    mf.open(str(mid), "wb")
    mf.write()
    mf.close()
    wav = tmp / f"p{program}.wav"
    subprocess.run(
        ["fluidsynth", "-ni", "-g", "0.8", "-F", str(wav), "-r", str(SR), SOUNDFONT, str(mid)],
        check=True,
        capture_output=True,
    )
    y, sr = sf.read(wav, dtype="float32", always_2d=True)
    assert sr == SR
    return y.mean(axis=1)


def drums(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Kick on beats 1 and 3, snare on 2 and 4, hi-hat on eighths, ``[frames]``."""
    y = np.zeros(int(duration_s * SR), dtype=np.float32)
    beat = 60.0 / BPM
    t = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    snare = rng.standard_normal(t.size) * np.exp(-t * 25) + 0.5 * np.sin(
        2 * np.pi * 190 * t
    ) * np.exp(-t * 20)
    n = int(0.04 * SR)
    hat = np.diff(rng.standard_normal(n) * np.exp(-np.arange(n) / (0.008 * SR)), prepend=0.0)

    def add(x: np.ndarray, start: int, gain: float) -> None:
        seg = y[start : start + x.size]
        seg += gain * x[: seg.size]

    for i, start in enumerate(np.arange(0.0, duration_s, beat / 2)):
        s = int(start * SR)
        add(hat, s, 0.10 if i % 2 == 0 else 0.05)
        if i % 4 == 0:
            add(kick, s, 0.6)
        elif i % 4 == 2:
            add(snare, s, 0.25)
    return y


def voice(text: str, tmp: Path) -> np.ndarray:
    """espeak-ng singing-ish female voice, ``[frames]`` at SR."""
    wav = tmp / "voice.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en+f3", "-s", "130", "-p", "70", "-w", str(wav), text],
        check=True,
        capture_output=True,
    )
    y, sr = sf.read(wav, dtype="float32")
    return soxr.resample(y, sr, SR).astype(np.float32)


def fit(y: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * SR)
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, y.size)] = y[:n]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "docs/demo/demo.flac")
    )
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    c_major = [
        ["C3", "E4", "G4", "C5"],
        ["F2", "F4", "A4", "C5"],
        ["G2", "D4", "G4", "B4"],
        ["C3", "E4", "G4", "C5"],
    ]
    e_minor = [
        ["E2", "E4", "G4", "B4"],
        ["A2", "A4", "C5", "E5"],
        ["B2", "D#4", "F#4", "B4"],
        ["E2", "E4", "G4", "B4"],
    ]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        piano_c = render_midi(c_major * 3, 0, 2.4, tmp)
        strings_e = render_midi(e_minor * 3, 48, 2.4, tmp)
        piano_e = render_midi(e_minor * 3, 0, 2.4, tmp)
        sung = voice(
            "Oh the night is long and the road goes on, we sing until the morning comes, "
            "la la la la, the road goes on.",
            tmp,
        )
    intro = fit(piano_c, 10) + drums(10, rng)
    verse = fit(piano_c[int(0.4 * SR) :], 10) + drums(10, rng) + 0.9 * fit(sung, 10)
    bridge = 1.8 * (fit(strings_e, 10) + 0.6 * fit(piano_e, 10)) + drums(10, rng)
    gap = np.zeros(5 * SR, dtype=np.float32)
    outro = 0.25 * fit(piano_c, 10)
    song = np.concatenate([intro, verse, bridge, gap, outro])
    song *= 0.8 / np.max(np.abs(song))
    stereo = np.stack([song, song], axis=1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sf.write(args.out, stereo, SR, subtype="PCM_16")


if __name__ == "__main__":
    main()
