"""Render a labelled key-detection set: Bach chorales, Essen folk tunes and chord progressions.

Each clip is a MIDI rendering (fluidsynth + the FluidR3 GM soundfont) of a piece whose key is
known from its score, transposed to spread the keys over all 24, played by one of several
General MIDI instruments. Clips are cached: a clip whose WAV exists is not rendered again.

Output (git-ignored): ``bench/data/key_set/<clip>.wav`` and ``bench/data/key_set/labels.csv``
with columns ``clip, subset, split, key, piece, program, transpose``. The split is by piece
(every clip of a piece is in the same split; progressions split by progression type): the
first ``--chorales``/``--folk`` pieces alternate train/test, ``--extra-train`` more pieces per
corpus go to train only. The benchmark evaluates on ``test`` only and the estimator's
parameters may be tuned on ``train`` only. A complete set is not rebuilt unless ``--force``.

Usage::

    python scripts/render_key_set.py [--out bench/data/key_set] [--jobs 2]
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.labels import KEYS, PITCH_CLASSES, key_index

logger = logging.getLogger(__name__)

SR = 22050
CLIP_S = 30.0
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SEED = 0

# General MIDI programs (0-based) per subset.
# Piano, church organ, strings, choir aahs, harpsichord, reed organ.
CHORALE_PROGRAMS = (0, 19, 48, 52, 6, 20)
# Piano, flute, violin, clarinet, nylon guitar, voice oohs, electric piano.
FOLK_PROGRAMS = (0, 73, 40, 71, 24, 53, 4)
# Piano, electric piano, church organ, nylon guitar, strings, choir aahs, brass, drawbar organ.
PROGRESSION_PROGRAMS = (0, 4, 19, 24, 48, 52, 61, 16)

# Folk collections with German/European tunes (the Chinese collections use pentatonic modes whose
# major/minor label is ambiguous, so they are left out).
FOLK_FILES = (
    "altdeu10",
    "altdeu20",
    "ballad10",
    "ballad20",
    "boehme10",
    "erk10",
    "erk20",
    "fink0",
    "kinder0",
    "lot",
    "lux",
    "zuccal0",
    "dva0",
)

# Progressions as (root offset in semitones from the tonic, quality) per chord, one chord a bar.
# Qualities: "M" major triad, "m" minor triad, "d" diminished, "7" dominant seventh.
MAJOR_PROGRESSIONS = (
    ((0, "M"), (5, "M"), (7, "M"), (0, "M")),  # I IV V I
    ((0, "M"), (9, "m"), (5, "M"), (7, "7"), (0, "M")),  # I vi IV V7 I
    ((0, "M"), (2, "m"), (7, "7"), (0, "M")),  # I ii V7 I
    ((0, "M"), (7, "M"), (9, "m"), (5, "M"), (7, "7"), (0, "M")),  # I V vi IV V7 I
    ((0, "M"), (4, "m"), (5, "M"), (2, "m"), (7, "M"), (0, "M")),  # I iii IV ii V I
    ((0, "M"), (5, "M"), (0, "M"), (7, "7"), (0, "M")),  # I IV I V7 I
)
MINOR_PROGRESSIONS = (
    ((0, "m"), (5, "m"), (7, "M"), (0, "m")),  # i iv V i
    ((0, "m"), (8, "M"), (5, "m"), (7, "7"), (0, "m")),  # i VI iv V7 i
    ((0, "m"), (2, "d"), (7, "7"), (0, "m")),  # i ii° V7 i
    ((0, "m"), (10, "M"), (8, "M"), (7, "M"), (0, "m")),  # i VII VI V i
    ((0, "m"), (3, "M"), (5, "m"), (7, "7"), (0, "m")),  # i III iv V7 i
    ((0, "m"), (5, "m"), (0, "m"), (7, "7"), (0, "m")),  # i iv i V7 i
)
# Train-only progressions (pop and modal-flavoured loops), so that the fitted key profiles see
# more than cadential formulas; the test split keeps only the odd-numbered lists above.
EXTRA_TRAIN_MAJOR = (
    ((0, "M"), (9, "m"), (2, "m"), (7, "7")),  # I vi ii V7
    ((0, "M"), (5, "M"), (9, "m"), (7, "M")),  # I IV vi V
    ((9, "m"), (5, "M"), (0, "M"), (7, "M")),  # vi IV I V
    ((0, "M"), (4, "m"), (9, "m"), (5, "M"), (7, "M")),  # I iii vi IV V
)
EXTRA_TRAIN_MINOR = (
    ((0, "m"), (8, "M"), (3, "M"), (10, "M")),  # i VI III VII
    ((0, "m"), (5, "m"), (10, "M"), (3, "M"), (8, "M"), (2, "d"), (7, "7"), (0, "m")),  # cycle
    ((0, "m"), (10, "M"), (8, "M"), (10, "M")),  # i VII VI VII
    ((0, "m"), (7, "m"), (5, "m"), (0, "m")),  # i v iv i (natural minor)
)
_QUALITY = {"M": (0, 4, 7), "m": (0, 3, 7), "d": (0, 3, 6), "7": (0, 4, 7, 10)}


# A note to play: (MIDI pitch, onset s, duration s, velocity).
Event = tuple[int, float, float, int]


@dataclass(frozen=True)
class Clip:
    """One clip to render and its label."""

    clip: str
    subset: str
    split: str
    key: str
    piece: str
    program: int
    transpose: int


def _transposed_key(tonic: str, mode: str, semitones: int) -> str:
    pc = key_index(f"{tonic} {mode}") % 12
    return f"{PITCH_CLASSES[(pc + semitones) % 12]} {mode}"


def _split_for(i: int, n_shared: int) -> str:
    """The first ``n_shared`` pieces alternate train/test; later ones are extra train pieces."""
    return "train" if i % 2 == 0 or i >= n_shared else "test"


def _chorale_key(score) -> tuple[str, str] | None:
    """(tonic, mode) of a chorale from its first Key object, or None if ambiguous.

    The first Key must have a major/minor mode and the last bass note must be its tonic
    (chorales ending on the dominant, i.e. Phrygian or modal endings, are dropped).
    """
    from music21 import key as m21key

    keys = list(score.recurse().getElementsByClass(m21key.Key))
    if not keys or keys[0].mode not in ("major", "minor"):
        return None
    k = keys[0]
    bass = score.parts[-1].flatten().notes
    if not bass or bass[-1].pitches[0].pitchClass != k.tonic.pitchClass:
        return None
    return PITCH_CLASSES[k.tonic.pitchClass], k.mode


def _folk_key(score, tonic_name: str) -> tuple[str, str] | None:
    """(tonic, mode) of an Essen tune whose ABC ``K:`` field names the tonic, or None.

    Essen's ABC gives the tonic but not the mode. The mode is read from the melody: the tune
    must end on the tonic; it is major if the major third occurs (duration-weighted) and the
    minor third, minor seventh and minor second do not; minor if the minor third occurs and the
    major third, major sixth (Dorian) and minor second (Phrygian) do not. Anything else is
    ambiguous and dropped.
    """
    notes = list(score.flatten().notes)
    if len(notes) < 8:
        return None
    tonic = key_index(f"{tonic_name} major")
    if notes[-1].pitches[0].pitchClass != tonic:
        return None
    weight = np.zeros(12)
    for n in notes:
        weight[(n.pitches[0].pitchClass - tonic) % 12] += float(n.quarterLength)
    w = weight / weight.sum()
    if w[4] > 0.03 and w[3] == 0 and w[10] == 0 and w[1] == 0:
        return PITCH_CLASSES[tonic], "major"
    if w[3] > 0.03 and w[4] == 0 and w[9] == 0 and w[1] == 0:
        return PITCH_CLASSES[tonic], "minor"
    return None


def _note_events(score, semitones: int, qpm: float) -> list[Event]:
    """Flatten a score into (pitch, onset s, duration s, velocity) within CLIP_S."""
    spq = 60.0 / qpm
    events: list[Event] = []
    for part in score.parts:
        for n in part.flatten().notes:
            onset = float(n.offset) * spq
            if onset >= CLIP_S:
                continue
            dur = max(0.05, float(n.quarterLength) * spq)
            for p in n.pitches:
                events.append((int(p.midi) + semitones, onset, dur, 80))
    return events


def _loop_to(events: list[Event], total_s: float, length_s: float) -> list[Event]:
    """Repeat ``events`` (one verse of ``length_s`` seconds) until ``total_s``."""
    out: list[Event] = []
    start = 0.0
    while start < total_s and length_s > 0:
        out.extend((p, t + start, d, v) for p, t, d, v in events if t + start < total_s)
        start += length_s
    return out


def _chorale_clips(
    n_pieces: int, n_extra: int, rng: np.random.Generator
) -> list[tuple[Clip, list[Event]]]:
    from music21 import corpus

    paths = sorted(p for p in corpus.getComposer("bach") if re.fullmatch(r"bwv[\d.]+\.mxl", p.name))
    rng.shuffle(paths)
    out: list[tuple[Clip, list[Event]]] = []
    for path in paths:
        if len(out) >= n_pieces + n_extra:
            break
        score = corpus.parse(path)
        if len(score.parts) != 4:
            continue
        found = _chorale_key(score)
        if found is None:
            logger.info("drop %s: key ambiguous", path.name)
            continue
        i = len(out)
        semitones = int(rng.integers(-6, 6))
        qpm = float(rng.uniform(66, 100))
        program = int(rng.choice(CHORALE_PROGRAMS))
        clip = Clip(
            clip=f"chorale_{path.stem}_{semitones:+d}_gm{program}",
            subset="chorale",
            split=_split_for(i, n_pieces),
            key=_transposed_key(*found, semitones),
            piece=path.stem,
            program=program,
            transpose=semitones,
        )
        out.append((clip, _note_events(score, semitones, qpm)))
    return out


def _folk_clips(
    n_pieces: int, n_extra: int, rng: np.random.Generator, minor_share: float = 0.25
) -> list[tuple[Clip, list[Event]]]:
    """Essen tunes with an unambiguous mode, ``minor_share`` of them minor in both splits.

    Minor tunes are rare in the collection (about 1 in 25), so the modes have separate quotas;
    within each mode the first pieces alternate train/test and the extra ones are train only.
    Each tune's transposition, tempo and instrument come from its own generator, so they do
    not depend on which other tunes were selected.
    """
    from music21 import converter, corpus

    tunes = []
    for name in FOLK_FILES:
        work = corpus.getWork(f"essenFolksong/{name}")
        assert isinstance(work, Path), work
        text = work.read_text(encoding="latin-1")
        for block in re.split(r"\n(?=X:)", text):
            m = re.search(r"^K:\s*([A-G][b#]?)\s*$", block, flags=re.M)
            if block.startswith("X:") and m:
                tunes.append((name, block, m.group(1)))
    order = rng.permutation(len(tunes))
    out: list[tuple[Clip, list[Event]]] = []
    total = n_pieces + n_extra
    share = {"major": 1 - minor_share, "minor": minor_share}
    quota = {mode: round(total * f) for mode, f in share.items()}
    shared = {mode: round(n_pieces * f) for mode, f in share.items()}
    for j in order:
        if len(out) >= total:
            break
        name, block, tonic = tunes[j]
        number = block.split("\n", 1)[0][2:].strip()
        try:
            score = converter.parseData(block, format="abc")
        except Exception as exc:  # music21 raises assorted errors on malformed ABC
            logger.info("drop %s #%s: %s", name, number, exc)
            continue
        found = _folk_key(score, tonic)
        if found is None or quota[found[1]] == 0:
            continue
        mode = found[1]
        i = round(total * share[mode]) - quota[mode]  # index of this tune within its mode
        quota[mode] -= 1
        piece_rng = np.random.default_rng([SEED, 2, int(j)])
        semitones = int(piece_rng.integers(-6, 6))
        qpm = float(piece_rng.uniform(90, 140))
        events = _note_events(score, semitones, qpm)
        verse_s = float(score.highestTime) * 60.0 / qpm
        program = int(piece_rng.choice(FOLK_PROGRAMS))
        clip = Clip(
            clip=f"folk_{name}_{number}_{semitones:+d}_gm{program}",
            subset="folk",
            split=_split_for(i, shared[mode]),
            key=_transposed_key(*found, semitones),
            piece=f"{name}#{number}",
            program=program,
            transpose=semitones,
        )
        out.append((clip, _loop_to(events, CLIP_S, verse_s)))
    return out


def _voice_chord(tonic_midi: int, root: int, quality: str, prev: list[int] | None) -> list[int]:
    """A bass note plus a close upper voicing near the previous chord (smooth voice leading)."""
    pcs = [(tonic_midi + root + iv) % 12 for iv in _QUALITY[quality]]
    bass = 36 + (tonic_midi + root - 36) % 12
    centre = 64 if prev is None else float(np.mean(prev))
    cands = []
    for base in range(52, 76):
        if base % 12 == pcs[0] or base % 12 in pcs:
            upper = sorted({base + ((pc - base) % 12) for pc in pcs})
            cands.append(upper)
    upper = min(cands, key=lambda u: abs(float(np.mean(u)) - centre))
    return [bass, *upper]


def _progression_clips(rng: np.random.Generator) -> list[tuple[Clip, list[Event]]]:
    out = []
    for mode, progs in (("major", MAJOR_PROGRESSIONS), ("minor", MINOR_PROGRESSIONS)):
        for pc in range(12):
            for variant in range(4):
                # Progressions 0, 2, 4 are train, 1, 3, 5 test: split by progression.
                p = int(rng.integers(0, 3)) * 2 + (variant % 2)
                split = "train" if p % 2 == 0 else "test"
                out.append(_progression_clip(mode, p, progs[p], pc, variant, split, rng))
    return out


def _extra_train_progression_clips(rng: np.random.Generator) -> list[tuple[Clip, list[Event]]]:
    """Every key of every progression in the train-only lists, once."""
    out = []
    for mode, progs in (("major", EXTRA_TRAIN_MAJOR), ("minor", EXTRA_TRAIN_MINOR)):
        for p, prog in enumerate(progs, start=len(MAJOR_PROGRESSIONS)):
            for pc in range(12):
                out.append(_progression_clip(mode, p, prog, pc, 0, "train", rng))
    return out


def _progression_clip(
    mode: str, p: int, prog, pc: int, variant: int, split: str, rng: np.random.Generator
) -> tuple[Clip, list[Event]]:
    """Progression ``prog`` (number ``p``) in the key on pitch class ``pc``, looped to CLIP_S."""
    qpm = float(rng.uniform(80, 130))
    bar_s = 4 * 60.0 / qpm
    style = ("block", "arpeggio", "waltz")[int(rng.integers(0, 3))]
    tonic_midi = 48 + pc
    events = []
    prev = None
    t = 0.0
    while t < CLIP_S:
        for root, quality in prog:
            chord = _voice_chord(tonic_midi, root, quality, prev)
            prev = chord[1:]
            events.extend(_perform(chord, t, bar_s, style, rng))
            t += bar_s
    events = [e for e in events if e[1] < CLIP_S]
    program = int(rng.choice(PROGRESSION_PROGRAMS))
    clip = Clip(
        clip=f"prog_{mode}{p}_{pc:02d}_{variant}_{style}_gm{program}",
        subset="progression",
        split=split,
        key=f"{PITCH_CLASSES[pc]} {mode}",
        piece=f"{mode}{p}",
        program=program,
        transpose=pc,
    )
    return clip, events


def _perform(chord: list[int], t: float, bar_s: float, style: str, rng: np.random.Generator):
    vel = lambda: int(rng.integers(60, 100))  # noqa: E731
    bass, upper = chord[0], chord[1:]
    if style == "block":
        return [(bass, t, bar_s, vel())] + [(p, t, bar_s * 0.95, vel()) for p in upper]
    if style == "arpeggio":
        step = bar_s / 8
        seq = [bass, *upper, upper[-1] + 12, *reversed(upper)][:8]
        return [(p, t + i * step, step * 1.5, vel()) for i, p in enumerate(seq)]
    beat = bar_s / 4
    ev = [(bass, t, beat * 1.8, vel())]
    for b in (1, 2, 3):
        ev.extend((p, t + b * beat, beat * 0.9, vel()) for p in upper)
    return ev


def _render(clip: Clip, events: list, out_dir: Path) -> None:
    """Write events as a one-track MIDI file with music21 and render it with fluidsynth."""
    from music21 import instrument, note, stream, tempo

    wav = out_dir / f"{clip.clip}.wav"
    if wav.exists():
        return
    part = stream.Part()
    inst = instrument.Instrument()
    inst.midiProgram = clip.program
    part.insert(0, inst)
    part.insert(0, tempo.MetronomeMark(number=60))  # one quarter = one second
    for pitch, onset, dur, vel in events:
        n = note.Note(min(108, max(21, pitch)), quarterLength=round(dur * 48) / 48)
        n.volume.velocity = vel
        part.insert(round(onset * 48) / 48, n)
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "clip.mid"
        stream.Score([part]).write("midi", fp=mid)
        raw = Path(tmp) / "clip.wav"
        subprocess.run(
            [
                "fluidsynth",
                "-ni",
                "-g",
                "0.6",
                "-F",
                str(raw),
                "-r",
                str(SR),
                str(SOUNDFONT),
                str(mid),
            ],
            check=True,
            capture_output=True,
        )
        # Mono, trimmed to the clip length, written atomically.
        subprocess.run(
            [
                "sox",
                str(raw),
                "-c",
                "1",
                str(wav.with_suffix(".tmp.wav")),
                "trim",
                "0",
                str(CLIP_S),
            ],
            check=True,
            capture_output=True,
        )
    wav.with_suffix(".tmp.wav").rename(wav)


def _render_one(args: tuple[Clip, list, Path]) -> str:
    clip, events, out_dir = args
    _render(clip, events, out_dir)
    return clip.clip


def main() -> None:
    """Build the clip list, render what is missing and write ``labels.csv``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/data/key_set"))
    parser.add_argument("--chorales", type=int, default=100, help="chorales, half of them test")
    parser.add_argument("--folk", type=int, default=100, help="folk tunes, half of them test")
    parser.add_argument(
        "--extra-train",
        type=int,
        default=150,
        help="extra train-only pieces per corpus (chorales, folk)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild the clip list")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not SOUNDFONT.exists():
        raise SystemExit(f"soundfont {SOUNDFONT} not found: apt-get install fluid-soundfont-gm")
    args.out.mkdir(parents=True, exist_ok=True)

    labels = args.out / "labels.csv"
    if labels.exists() and not args.force:
        with open(labels) as f:
            missing = [
                r["clip"] for r in csv.DictReader(f) if not (args.out / f"{r['clip']}.wav").exists()
            ]
        if not missing:
            logger.info("%s is complete (use --force to rebuild it)", labels)
            return
    # One generator per subset, so that changing one subset's size leaves the others alone.
    clips = _progression_clips(np.random.default_rng([SEED, 0]))
    clips += _extra_train_progression_clips(np.random.default_rng([SEED, 3]))
    clips += _chorale_clips(args.chorales, args.extra_train, np.random.default_rng([SEED, 1]))
    clips += _folk_clips(args.folk, args.extra_train, np.random.default_rng([SEED, 2]))
    assert all(c.key in KEYS for c, _ in clips)
    logger.info("rendering %d clips into %s", len(clips), args.out)
    with ProcessPoolExecutor(args.jobs) as pool:
        for done, name in enumerate(
            pool.map(_render_one, [(c, e, args.out) for c, e in clips]), start=1
        ):
            if done % 25 == 0:
                logger.info("%d/%d %s", done, len(clips), name)

    with open(labels, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(clips[0][0])))
        writer.writeheader()
        writer.writerows(asdict(c) for c, _ in clips)
    logger.info("wrote %s", labels)


if __name__ == "__main__":
    main()
