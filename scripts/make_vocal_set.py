"""Render the labelled clips the tagger's thresholds are chosen on and benchmarked with.

Every clip is 6 s of 16 kHz mono: an instrumental bed rendered from MIDI (music21 writes it,
fluidsynth plays it with the FluidR3 GM soundfont) and, for vocal clips, an espeak-ng voice
mixed on top. All labels are known by construction:

- ``vocal`` clips (24 none + 24 male + 24 female per split): a bed of one or two GM
  instruments (with or without drums) and, unless ``none``, an English voice, either spoken
  sentences or "sung" (each word synthesized separately at a pitch following a melody
  contour), 0 to 8 dB above the bed. Male voices are espeak-ng's male variants (``en+m1``...),
  female voices its female variants (``en+f1``...);
- ``instrument`` clips: one GM program alone (or a drum kit alone), labelled with its
  instrument (organ is rendered but has no label in our vocabulary);
- ``genre`` clips: ``classical`` (strings / harpsichord / organ / piano / flute, no drums),
  ``electronic`` (synth lead + synth pad + drums, 120-130 bpm), ``rock`` (overdriven or
  distorted guitar + bass + drums).

Moods are labelled on every clip from how it was rendered: ``slow`` (60-76 bpm) or ``fast``
(140-170 bpm), ``loud`` (-14 dBFS RMS, saturated) or ``quiet`` (-34 dBFS RMS).

The two splits share no voice, no sentence and no random seed: thresholds are chosen on
``tune`` (``bench/tagger.py --fit``), accuracy is reported on ``eval``.

Output (git-ignored): ``bench/data/tagger_set/<clip>.wav`` and ``labels.csv`` with columns
``clip, split, kind, vocals, instruments, genre, moods, detail`` (multi-valued fields joined
with ``;``). Clips that exist are not rendered again.

Usage::

    python scripts/make_vocal_set.py [--out bench/data/tagger_set] [--per-class 24]
"""

from __future__ import annotations

import argparse
import csv
import logging
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

log = logging.getLogger("make_vocal_set")

SR = 16000
CLIP_S = 6.0
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"

# GM program (0-based) -> our instrument label ("" when our vocabulary has none).
PROGRAMS: dict[int, str] = {
    0: "piano",
    6: "harpsichord",
    19: "",  # church organ
    24: "guitar",  # nylon
    25: "guitar",  # steel
    29: "guitar",  # overdriven
    30: "guitar",  # distortion
    40: "violin",
    42: "cello",
    46: "harp",
    48: "strings",
    52: "choir",  # choir aahs
    73: "flute",
    81: "synth",  # saw lead
    89: "synth",  # warm pad
    104: "sitar",
}
BED_PROGRAMS = (0, 24, 25, 48, 46, 19, 89, 40, 73, 6)
BASS_PROGRAM = 33  # electric bass (finger), no label of its own
DRUMS = "drums"

VOICES = {
    "tune": {
        "male": ("m1", "m3", "m5", "m7", "Alex", "david"),
        "female": ("f1", "f3", "f5", "Alicia", "belinda", "steph"),
    },
    "eval": {
        "male": ("m2", "m4", "m6", "m8", "Andy", "john"),
        "female": ("f2", "f4", "Annie", "linda", "steph2", "anika"),
    },
}
SENTENCES = {
    "tune": (
        "I walked along the river in the morning light",
        "you never told me why the summer had to end",
        "hold on to the night and never let me go",
        "we were dancing in the rain until the break of day",
        "the city lights are calling me back home again",
        "every road I take leads me back to you",
        "open up your heart and let the sunshine in",
        "I can hear the ocean singing through the trees",
    ),
    "eval": (
        "tell me that you love me one more time tonight",
        "the stars are falling down upon the silent sea",
        "running through the fields of gold with you beside me",
        "there is a fire burning deep inside my soul",
        "we will find our way across the mountains and the sky",
        "don't you cry my darling the morning will come",
        "all the broken dreams are drifting on the wind",
        "sing it loud and let the whole world hear",
    ),
}
SEEDS = {"tune": 101, "eval": 202}


@dataclass(frozen=True)
class Clip:
    """One labelled clip (see the module docstring for the fields)."""

    clip: str
    split: str
    kind: str
    vocals: str
    instruments: str
    genre: str
    moods: str
    detail: str


def _scale(tonic: int, minor: bool) -> list[int]:
    steps = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    return [tonic + s for s in steps]


def _parts(
    rng: np.random.Generator, programs: list[int], *, bpm: float, drums: bool, bass: bool = False
) -> list[tuple[int, list[tuple[int, float, float, int]]]]:
    """(program, or -1 - GM drum kit for drums, [(pitch, onset s, duration s, velocity)]) per
    part."""
    beat = 60.0 / bpm
    tonic = 48 + int(rng.integers(12))
    scale = _scale(tonic, bool(rng.integers(2)))
    degrees = [0, 5, 3, 4] if rng.random() < 0.5 else [0, 3, 4, 0]
    bar = 4 * beat
    n_bars = int(np.ceil(CLIP_S / bar)) + 1
    parts = []
    for k, program in enumerate(programs):
        events = []
        for b in range(n_bars):
            d = degrees[b % len(degrees)]
            triad = [scale[(d + i) % 7] + 12 * ((d + i) // 7) for i in (0, 2, 4)]
            if k == 0:  # chords, or arpeggios when fast
                if bpm > 120:
                    for i in range(8):
                        p = triad[i % 3] + 12 * (i // 3 % 2)
                        events.append((p, b * bar + i * beat / 2, beat / 2, 80))
                else:
                    events.extend((p, b * bar, bar * 0.95, 75) for p in triad)
            else:  # a melody an octave up
                t = 0.0
                while t < bar - 1e-6:
                    dur = beat * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
                    p = int(rng.choice(scale)) + 12
                    events.append((p, b * bar + t, min(dur, bar - t) * 0.9, 90))
                    t += dur
        parts.append((program, events))
    if bass:
        events = []
        for b in range(n_bars):
            root = scale[degrees[b % len(degrees)]] - 24
            events.extend((root, b * bar + i * beat, beat * 0.9, 95) for i in range(4))
        parts.append((BASS_PROGRAM, events))
    if drums:
        events = []
        for i in range(int(n_bars * 8)):
            t = i * beat / 2
            if i % 4 == 0:
                events.append((36, t, 0.1, 110))  # kick
            if i % 4 == 2:
                events.append((38, t, 0.1, 100))  # snare
            events.append((42, t, 0.05, 70))  # closed hat
        parts.append((-1, events))
    return parts


def render(parts: list, tmp: Path) -> np.ndarray:
    """MIDI (music21) -> fluidsynth -> 16 kHz mono, CLIP_S long. A part's program below 0 plays
    on the drum channel with GM drum kit ``-1 - program`` (-1: the standard kit)."""
    from music21 import instrument, note, stream, tempo

    score = stream.Score()
    for k, (program, events) in enumerate(parts):
        part = stream.Part()
        inst = instrument.Instrument()
        inst.midiChannel = 9 if program < 0 else k
        inst.midiProgram = -1 - program if program < 0 else program  # -1 - kit on channel 10
        part.insert(0, inst)
        part.insert(0, tempo.MetronomeMark(number=60))  # a quarter note = 1 s
        for pitch, onset, dur, vel in events:
            n = note.Note(int(pitch), quarterLength=max(1, round(dur * 48)) / 48)
            n.volume.velocity = vel
            part.insert(round(onset * 48) / 48, n)
        score.insert(0, part)
    mid, wav = tmp / "bed.mid", tmp / "bed.wav"
    score.write("midi", fp=mid)
    subprocess.run(
        ["fluidsynth", "-ni", "-g", "0.5", "-r", str(SR), "-F", str(wav), SOUNDFONT, str(mid)],
        check=True,
        capture_output=True,
    )
    return _fit(_read(wav))


def speak(text: str, voice: str, tmp: Path, *, pitch: int = 50, speed: int = 150) -> np.ndarray:
    """espeak-ng ``en+<voice>`` -> 16 kHz mono."""
    wav = tmp / "voice.wav"
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            f"en+{voice}",
            "-p",
            str(pitch),
            "-s",
            str(speed),
            "-w",
            str(wav),
            text,
        ],
        check=True,
        capture_output=True,
    )
    return _read(wav)


def voice_track(
    rng: np.random.Generator, voice: str, sentences: tuple[str, ...], tmp: Path, *, sung: bool
) -> np.ndarray:
    """At least CLIP_S of speech or word-by-word "singing" on a melody contour."""
    out: list[np.ndarray] = []
    total = 0
    while total < CLIP_S * SR:
        text = str(rng.choice(sentences))
        if sung:
            contour = 50 + 25 * np.sin(np.linspace(0, 2 * np.pi * rng.uniform(0.5, 1.5), 12))
            for i, word in enumerate(text.split()):
                y = speak(
                    word, voice, tmp, pitch=int(contour[i % 12]), speed=int(rng.integers(80, 110))
                )
                out.append(y)
                total += y.size
        else:
            y = speak(text, voice, tmp, speed=int(rng.integers(130, 170)))
            out.extend([y, np.zeros(int(0.2 * SR), np.float32)])
            total += y.size
    return _fit(np.concatenate(out))


def _read(path: Path) -> np.ndarray:
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return soxr.resample(y.mean(axis=1), sr, SR).astype(np.float32) if sr != SR else y.mean(axis=1)


def _fit(y: np.ndarray) -> np.ndarray:
    n = int(CLIP_S * SR)
    return np.pad(y, (0, max(0, n - y.size)))[:n].astype(np.float32)


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(y**2)) + 1e-9)


def _level(y: np.ndarray, loud: bool) -> np.ndarray:
    if loud:
        y = np.tanh(2.0 * y * (10 ** (-14 / 20) / _rms(y)))
        return (y * (10 ** (-14 / 20) / _rms(y))).clip(-1, 1)
    return y * (10 ** (-34 / 20) / _rms(y))


def _tempo(rng: np.random.Generator, fast: bool) -> float:
    return float(rng.uniform(140, 170) if fast else rng.uniform(60, 76))


def build(out: Path, per_class: int) -> list[Clip]:
    out.mkdir(parents=True, exist_ok=True)
    clips: list[Clip] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for split, seed in SEEDS.items():
            jobs = []
            for label in ("none", "male", "female"):
                for i in range(per_class):
                    jobs.append(("vocal", label, i))
            for program in (*PROGRAMS, -1):
                for i in range(2):
                    jobs.append(("instrument", program, i))
            for genre in ("classical", "electronic", "rock"):
                for i in range(per_class // 4):
                    jobs.append(("genre", genre, i))
            for j, (kind, what, i) in enumerate(jobs):
                rng = np.random.default_rng([seed, j])  # per clip: a cached clip changes nothing
                name = f"{split}_{kind}_{what if kind != 'instrument' else f'p{what}'}_{i:02d}"
                fast, loud = bool(rng.integers(2)), bool(rng.integers(2))
                clip, parts, vocal = _plan(rng, split, kind, what, fast=fast, name=name)
                moods = ";".join(["fast" if fast else "slow", "loud" if loud else "quiet"])
                clip = Clip(**{**asdict(clip), "moods": moods})
                clips.append(clip)
                wav = out / f"{name}.wav"
                if wav.exists():
                    continue
                y = render(parts, tmp)
                if vocal is not None:
                    voice, sung, snr_db = vocal
                    v = voice_track(rng, voice, SENTENCES[split], tmp, sung=sung)
                    y = y / _rms(y) + v / _rms(v) * 10 ** (snr_db / 20)
                sf.write(str(wav), _level(y, loud), SR, subtype="PCM_16")
                log.info("%s", name)
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(clips[0])))
        w.writeheader()
        w.writerows(asdict(c) for c in clips)
    return clips


def _plan(
    rng: np.random.Generator, split: str, kind: str, what: str | int, *, fast: bool, name: str
) -> tuple[Clip, list, tuple[str, bool, float] | None]:
    """(labels, MIDI parts, (voice, sung, snr dB) or None) for one clip."""
    bpm = _tempo(rng, fast)
    vocal = None
    if kind == "vocal":
        n = int(rng.integers(1, 3))
        programs = [int(p) for p in rng.choice(BED_PROGRAMS, size=n, replace=False)]
        drums = bool(rng.random() < 0.4)
        parts = _parts(rng, programs, bpm=bpm, drums=drums)
        if what != "none":
            voice = str(rng.choice(VOICES[split][what]))
            sung = bool(rng.random() < 0.5)
            vocal = (voice, sung, float(rng.uniform(0.0, 8.0)))
        instruments = {PROGRAMS[p] for p in programs} | ({DRUMS} if drums else set())
        detail = f"programs={programs} " + (f"voice={vocal[0]} sung={vocal[1]}" if vocal else "")
        genre, vocals = "", what
    elif kind == "instrument":
        parts = (
            _parts(rng, [], bpm=bpm, drums=True)
            if what < 0
            else _parts(rng, [what], bpm=bpm, drums=False)
        )
        instruments = {DRUMS} if what < 0 else {PROGRAMS[what]}
        genre, vocals, detail = "", "" if what == 52 else "none", f"program={what}"
    else:
        if what == "classical":
            programs = [int(rng.choice([48, 6, 19, 0])), int(rng.choice([40, 73, 42]))]
            parts, drums, bass = _parts(rng, programs, bpm=bpm, drums=False), False, False
        elif what == "electronic":
            programs, bpm = [89, 81], float(rng.uniform(120, 130))
            parts, drums, bass = _parts(rng, programs, bpm=bpm, drums=True, bass=True), True, True
        else:
            programs = [int(rng.choice([29, 30]))]
            parts, drums, bass = _parts(rng, programs, bpm=bpm, drums=True, bass=True), True, True
        instruments = {PROGRAMS[p] for p in programs} | ({DRUMS} if drums else set())
        genre, vocals, detail = what, "none", f"programs={programs} bass={bass}"
    clip = Clip(
        clip=name,
        split=split,
        kind=kind,
        vocals=vocals,
        instruments=";".join(sorted(i for i in instruments if i)),
        genre=genre,
        moods="",
        detail=f"bpm={bpm:.0f} {detail}".strip(),
    )
    return clip, parts, vocal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/data/tagger_set"))
    parser.add_argument("--per-class", type=int, default=24, help="vocal clips per class and split")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    clips = build(args.out, args.per_class)
    log.info("%d clips in %s", len(clips), args.out)


if __name__ == "__main__":
    main()
