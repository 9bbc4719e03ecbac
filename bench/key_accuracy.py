"""Key-detection benchmark: our estimator vs essentia's KeyExtractor vs a plain baseline.

Runs on the labelled set rendered by ``scripts/render_key_set.py`` (``bench/data/key_set``).
Prints, per method, the MIREX weighted score (mir_eval's rules: same key 1.0, estimate a fifth
above the reference in the same mode 0.5, relative 0.3, parallel 0.2), exact accuracy,
milliseconds per 30 s clip and the real-time factor, on the whole split and per subset.

Usage::

    python scripts/render_key_set.py             # once, a few minutes
    python bench/key_accuracy.py                 # the table, on the test split
    python bench/key_accuracy.py --fit           # refit the key profiles on the train split
    python bench/key_accuracy.py --fit-home BEATLES_DIR GTZAN_DIR
                                                 # refit the home key's chord tables (train
                                                 # renders and the real sets' dev halves)

essentia is imported only here: it is a baseline to beat, never a runtime dependency.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.analysis.chroma import pitch_profiles
from engine.analysis.key import estimate_key, key_features, key_scores
from engine.labels import KEYS, key_index, key_tonic_mode

ESSENTIA_PROFILES = ("edma", "bgate", "temperley", "krumhansl")
KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KRUMHANSL_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def mirex_score(reference: str, estimate: str | None) -> float:
    """MIREX weighted key score, following ``mir_eval.key.weighted_score``; 0 for no key."""
    if estimate is None:
        return 0.0
    ref_pc, ref_mode = key_tonic_mode(key_index(reference))
    est_pc, est_mode = key_tonic_mode(key_index(estimate))
    if (ref_pc, ref_mode) == (est_pc, est_mode):
        return 1.0
    if ref_mode == est_mode and (est_pc - ref_pc) % 12 == 7:
        return 0.5
    if ref_mode == "major" and est_mode == "minor" and (est_pc - ref_pc) % 12 == 9:
        return 0.3
    if ref_mode == "minor" and est_mode == "major" and (est_pc - ref_pc) % 12 == 3:
        return 0.3
    if ref_pc == est_pc:
        return 0.2
    return 0.0


def baseline_key(y: np.ndarray, sr: int) -> str:
    """Plain STFT chroma (each bin to its nearest pitch class) + Krumhansl-Schmuckler."""
    import scipy.signal

    freqs, _, z = scipy.signal.stft(y, fs=sr, nperseg=4096, noverlap=2048)
    mag = np.abs(z).sum(axis=1)
    keep = (freqs > 50) & (freqs < 5000)
    pc = np.round(69 + 12 * np.log2(freqs[keep] / 440.0)).astype(int) % 12
    chroma = np.bincount(pc, weights=mag[keep], minlength=12)
    scores = [
        np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
        for profile in (KRUMHANSL_MAJOR, KRUMHANSL_MINOR)
        for tonic in range(12)
    ]
    return KEYS[int(np.nanargmax(scores))] if np.any(np.isfinite(scores)) else KEYS[0]


def essentia_method(profile: str, sr: int) -> Callable[[np.ndarray, int], str]:
    """essentia's KeyExtractor with one key profile, as ``(y, sr) -> key name``."""
    import essentia
    import essentia.standard as es

    essentia.log.infoActive = False
    extractor = es.KeyExtractor(profileType=profile, sampleRate=sr)

    def run(y: np.ndarray, sr: int) -> str:
        tonic, scale, _ = extractor(y.astype(np.float32))
        return f"{tonic} {scale}"

    return run


def annotate_method() -> Callable[[np.ndarray, int], str | None]:
    """The track key ``sonicverse annotate`` tells for a clip (``lite`` preset): the clip's
    default regions analysed, the track's chords handed to the track decoder, and the key the
    decoded regions hold longest (None when most of the clip has "no clear key")."""
    from common import annotated, track_key

    from engine import backends, presets
    from engine.track import resolve

    preset = presets.load("lite")
    backend = backends.create(preset)

    def run(y: np.ndarray, sr: int) -> str | None:
        raw = annotated(backend, y, sr, "clip")
        return track_key(resolve(raw, settings=preset.track, analysis=preset.analysis).annotations)

    return run


DRUMS_DB = -3.0  # drum loop level relative to the clip's RMS in the "+ drums" subset


def drum_loop(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A pitchless drum loop at a random tempo (90-150 BPM), ``[n]``: swept-sine kick on
    every beat, noise snare on 2 and 4, noise hats on eighths, each hit slightly varied."""
    bpm = rng.uniform(90.0, 150.0)
    y = np.zeros(n + sr)
    t_kick = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * np.cumsum(45.0 + 105.0 * np.exp(-t_kick / 0.03)) / sr)
    kick *= np.exp(-t_kick / 0.12)
    eighth = 30.0 / bpm
    for i, t in enumerate(np.arange(0.0, n / sr, eighth)):
        start = int(t * sr)
        if i % 2 == 0:
            hit = kick
        elif i % 4 == 3:
            m = int(0.18 * sr)
            hit = 0.6 * rng.standard_normal(m) * np.exp(-np.arange(m) / (0.05 * sr))
        else:
            m = int(0.05 * sr)
            hit = 0.2 * np.diff(rng.standard_normal(m + 1)) * np.exp(-np.arange(m) / (0.01 * sr))
        y[start : start + hit.size] += rng.uniform(0.85, 1.0) * hit
    return y[:n]


def with_drums(y: np.ndarray, sr: int, seed: int) -> np.ndarray:
    """``y`` with a drum loop mixed in at :data:`DRUMS_DB` relative to its RMS."""
    drums = drum_loop(y.size, sr, np.random.default_rng(seed))
    gain = np.sqrt(np.mean(y**2) / max(np.mean(drums**2), 1e-12)) * 10 ** (DRUMS_DB / 20)
    return (y + gain * drums).astype(np.float32)


def load_set(data: Path, split: str) -> list[dict[str, str]]:
    """Rows of ``labels.csv`` in the given split (``all`` for both)."""
    labels = data / "labels.csv"
    if not labels.exists():
        raise SystemExit(f"{labels} not found: run `python scripts/render_key_set.py` first")
    with open(labels) as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if split == "all" or r["split"] == split]


L2_PENALTIES = (1e-5, 1e-4, 1e-3, 1e-2)


def fit_logistic(
    features: np.ndarray,
    truth: np.ndarray,
    l2: float,
    *,
    sample_weight: np.ndarray | None = None,
    prior: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Key weights as a multinomial logistic regression over the 24 keys.

    Args:
        features: per clip and key, what the key's score is a dot product of [clips, 24,
            dims] (:func:`engine.analysis.key.key_features`: 48).
        truth: index of each clip's key in ``KEYS`` [clips].
        l2: L2 penalty on the weights' distance from ``prior``.
        sample_weight: each clip's share of the loss [clips] (normalised); equal when None.
        prior: ``(major, minor)`` weights the penalty pulls towards [2, dims]; zeros when None.

    Returns:
        ``(major, minor)`` weights [4, 12] each when ``dims`` is 48 (as
        :data:`engine.analysis.key` keeps them), else [dims] each.
    """
    from scipy.optimize import minimize

    n, _, dims = features.shape
    rows = np.arange(n)
    major, minor = features[:, :12], features[:, 12:]
    share = np.full(n, 1.0 / n) if sample_weight is None else sample_weight / sample_weight.sum()
    centre = np.zeros(2 * dims) if prior is None else np.asarray(prior, dtype=float).ravel()

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = np.concatenate([major @ w[:dims], minor @ w[dims:]], axis=1)
        s = s - s.max(axis=1, keepdims=True)
        lse = np.log(np.exp(s).sum(axis=1))
        nll = -np.sum(share * (s[rows, truth] - lse))
        p = np.exp(s - lse[:, None])
        p[rows, truth] -= 1.0  # d(nll)/d(score) per clip
        p *= share[:, None]
        grad = np.concatenate(
            [np.einsum("nk,nkd->d", p[:, :12], major), np.einsum("nk,nkd->d", p[:, 12:], minor)]
        )
        off = w - centre
        return float(nll + l2 * off @ off), grad + 2 * l2 * off

    w = minimize(loss, centre.copy(), jac=True, method="L-BFGS-B").x
    if dims == 48:
        return w[:dims].reshape(4, 12), w[dims:].reshape(4, 12)
    return w[:dims], w[dims:]


# The profiles' floors the fit chooses from with the L2 penalty
# (:attr:`engine.analysis.chroma.ChromaConfig.profile_range_db`).
PROFILE_FLOORS_DB = (25.0, 30.0, 35.0, 40.0)


def fit_profiles(rows: list[dict[str, str]], audio: dict[str, np.ndarray], sr: int) -> None:
    """Fit the key weights on ``rows`` (the train split) and print them as constants.

    Every train clip counts twice: as rendered and with a drum loop mixed in
    (:func:`with_drums`), so the weights learn to read harmony under drums. The profiles'
    floor (:data:`PROFILE_FLOORS_DB`) and the L2 penalty are chosen together by two-fold
    cross-validation over pieces inside ``rows``: the setting whose
    weights, fitted on one half, give the other half (clean and drummed) the highest mean
    log-probability of its true keys, because the track decoder reads the probabilities, not
    only the best key. The printed weights are then fitted on all of ``rows`` with it.
    """
    from dataclasses import replace

    from engine.analysis.chroma import ChromaConfig

    both = rows + rows
    clips = [audio[r["clip"]] for r in rows]
    clips += [with_drums(y, sr, seed=i) for i, y in enumerate(clips)]
    truth = np.array([key_index(r["key"]) for r in both])
    pieces = sorted({r["piece"] for r in rows})
    fold = np.array([pieces.index(r["piece"]) % 2 for r in both])
    best: tuple[float, float, ChromaConfig] = (-np.inf, 0.0, ChromaConfig())
    chosen_feats = np.zeros(0)
    print("# 2-fold CV on train (clean and drummed): log-probability of the true key / MIREX")
    print("# floor dB: " + "  ".join(f"L2 {l2:g}" for l2 in L2_PENALTIES))
    for floor in PROFILE_FLOORS_DB:
        config = replace(ChromaConfig(), profile_range_db=floor)
        profiles = [pitch_profiles(y, sr=sr, config=config) for y in clips]
        feats = np.stack([key_features(p) for p in profiles])
        cells = []
        for l2 in L2_PENALTIES:
            estimates = np.zeros(len(both), dtype=int)
            loglik = np.zeros(len(both))
            for f in (0, 1):
                weights = fit_logistic(feats[fold != f], truth[fold != f], l2)
                for i in np.flatnonzero(fold == f):
                    s = key_scores(profiles[i], weights=weights)
                    estimates[i] = int(np.argmax(s))
                    loglik[i] = s[truth[i]] - s.max() - np.log(np.exp(s - s.max()).sum())
            scores = [mirex_score(r["key"], KEYS[e]) for r, e in zip(both, estimates, strict=True)]
            cells.append(f"{loglik.mean():.3f} / {np.mean(scores):.3f}")
            if loglik.mean() > best[0]:
                best, chosen_feats = (float(loglik.mean()), l2, config), feats
        print(f"# {floor:2.0f}: " + "  ".join(cells))
    _, l2, config = best
    weights = fit_logistic(chosen_feats, truth, l2)
    print(
        f"# chosen: ChromaConfig(profile_range_db={config.profile_range_db:g}), L2 {l2:g}; "
        f"fitted on {len(rows)} train clips, clean and drummed"
    )
    rows_doc = ("treble", "bass", "major triads", "minor triads")
    for name, w in zip(("MAJOR_WEIGHTS", "MINOR_WEIGHTS"), weights, strict=True):
        print(f"{name} = np.array([")
        for doc, row in zip(rows_doc, w, strict=True):
            print(f"    [{', '.join(f'{v:.3f}' for v in row)}],  # {doc}")
        print("])")


# The home key's tables (engine.analysis.chords.HOME_MAJOR / HOME_MINOR) are fitted towards
# these, written from functional harmony before any fit: the tonic triad most, the subdominant
# and dominant (and their sevenths) next, the relative and other diatonic minor chords less,
# pop's flat-seven chord a little in major; in minor the dominant may be major.
PRIOR_MAJOR: dict[tuple[int, str], float] = {
    (0, "maj"): 1.0,
    (0, "maj7"): 0.8,
    (0, "7"): 0.8,
    (0, "sus4"): 0.5,
    (0, "sus2"): 0.5,
    (5, "maj"): 0.7,
    (5, "maj7"): 0.6,
    (5, "7"): 0.6,
    (7, "maj"): 0.7,
    (7, "7"): 0.7,
    (9, "min"): 0.5,
    (9, "min7"): 0.4,
    (2, "min"): 0.4,
    (2, "min7"): 0.4,
    (4, "min"): 0.3,
    (10, "maj"): 0.3,
}
PRIOR_MINOR: dict[tuple[int, str], float] = {
    (0, "min"): 1.0,
    (0, "min7"): 0.8,
    (5, "min"): 0.6,
    (7, "min"): 0.4,
    (7, "maj"): 0.6,
    (7, "7"): 0.6,
    (8, "maj"): 0.5,
    (3, "maj"): 0.5,
    (10, "maj"): 0.5,
    (2, "dim"): 0.3,
}
# The fit: a 24-key logistic regression on each track's chord time per degree and quality
# (shares of its chord time, the edge chords' cadence seconds included), L2-pulled towards the
# prior tables (x HOME_PRIOR_SCALE, in logits); the train renders a quarter of the loss, the
# Beatles and GTZAN development halves three eighths each. Chosen by the track key through the
# decoder on the development halves among render shares 0.25 / 0.5, L2 1e-3 / 1e-2 / 1e-1, with
# and without the prior.
HOME_L2 = 1e-3
HOME_PRIOR_SCALE = 10.0
HOME_RENDER_SHARE = 0.25


def chord_degree_features(chords: list) -> np.ndarray:
    """``[24 keys, 12 degrees x qualities]``: the share of the chords' time each (degree above
    the key's tonic, quality) holds, the edge chords' cadence seconds included."""
    from engine.analysis.chords import QUALITIES, chord_seconds

    width = len(QUALITIES)
    out = np.zeros((24, 12 * width))
    total = 0.0
    for _, root, quality, seconds in chord_seconds(chords):
        total += seconds
        for k in range(24):
            out[k, ((root - k % 12) % 12) * width + quality] += seconds
    return out / total if total > 0 else out


def fit_home(
    rows: list[dict[str, str]], audio: dict[str, np.ndarray], sr: int, dirs: list[Path]
) -> None:
    """Fit the home key's tables and print them as constants (see :data:`HOME_L2`)."""
    from dataclasses import replace

    from common import annotated
    from real import SR, beatles, gtzan

    from engine import backends, presets
    from engine.analysis.chords import QUALITIES
    from engine.audio import load, resample, to_mono
    from engine.pipeline import track_chords_of

    preset = presets.load("lite")
    # the tagger off: keys and chords do not read it
    backend = backends.create(replace(preset, options=replace(preset.options, tag=False)))
    names = list(QUALITIES)
    clips = [audio[r["clip"]] for r in rows]
    clips += [with_drums(y, sr, seed=i) for i, y in enumerate(clips)]
    sets: dict[str, list[tuple[np.ndarray, int]]] = {
        "train renders": [
            (
                chord_degree_features(list(track_chords_of(y, sr=sr, analysis=preset.analysis))),
                key_index(r["key"]),
            )
            for y, r in zip(clips, rows + rows, strict=True)
        ]
    }
    for name, tracks in (
        ("Beatles dev", beatles(dirs[0], "dev")),
        ("GTZAN dev", gtzan(dirs[1], "dev")),
    ):
        group = sets.setdefault(name, [])
        for tr in tracks:
            clip = load(tr.path)
            y = resample(to_mono(clip.samples), sr=clip.sr, target_sr=SR)
            # the chords the track decoder reads: the track's, carried by its audible regions
            chords = [c for a in annotated(backend, y, SR, tr.path.name) for c in a.chords]
            group.append((chord_degree_features(chords), key_index(str(tr.key))))
    feats = np.stack([f for group in sets.values() for f, _ in group])
    truth = np.array([t for group in sets.values() for _, t in group])
    weight = np.concatenate(
        [
            np.full(
                len(group),
                (HOME_RENDER_SHARE if name == "train renders" else (1 - HOME_RENDER_SHARE) / 2)
                / len(group),
            )
            for name, group in sets.items()
        ]
    )
    prior = np.zeros((2, 12, len(names)))
    for m, table in enumerate((PRIOR_MAJOR, PRIOR_MINOR)):
        for (degree, quality), w in table.items():
            prior[m, degree, names.index(quality)] = w
    fitted = fit_logistic(
        feats, truth, HOME_L2, sample_weight=weight, prior=HOME_PRIOR_SCALE * prior.reshape(2, -1)
    )
    tables = np.stack([w.reshape(12, len(names)) for w in fitted])
    tables /= tables[0, 0, names.index("maj")]
    print(f"# fitted on {', '.join(f'{n} ({len(g)})' for n, g in sets.items())}")
    print(f"# columns: {', '.join(names)}; rows: degrees 0-11 above the tonic")
    for label, table in zip(("HOME_MAJOR", "HOME_MINOR"), tables, strict=True):
        print(f"{label} = np.array([")
        for degree, row in enumerate(table):
            print(f"    [{', '.join(f'{v:.2f}' for v in row)}],  # {degree}")
        print("])")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("bench/data/key_set"))
    parser.add_argument("--split", choices=("test", "train", "all"), default="test")
    parser.add_argument("--fit", action="store_true", help="fit profiles on the train split")
    parser.add_argument(
        "--fit-home",
        nargs=2,
        type=Path,
        metavar=("BEATLES_DIR", "GTZAN_DIR"),
        help="fit the home key's chord tables on the train split and the real dev halves",
    )
    parser.add_argument("--no-essentia", action="store_true")
    args = parser.parse_args()

    rows = load_set(args.data, "train" if args.fit or args.fit_home else args.split)
    audio = {}
    sr = 0
    for r in rows:
        y, sr = sf.read(args.data / f"{r['clip']}.wav", dtype="float32")
        audio[r["clip"]] = y
    if args.fit:
        fit_profiles(rows, audio, sr)
        return
    if args.fit_home:
        fit_home(rows, audio, sr, args.fit_home)
        return

    methods: dict[str, Callable[[np.ndarray, int], str | None]] = {
        "ours": lambda y, sr: estimate_key(y, sr=sr).key,
        "ours, as annotate tells it": annotate_method(),
        "baseline (STFT chroma + K-S)": baseline_key,
    }
    if not args.no_essentia:
        for profile in ESSENTIA_PROFILES:
            methods[f"essentia {profile}"] = essentia_method(profile, sr)

    # the same test clips with a drum loop mixed in (other seeds than the train clips had)
    drummed = {c: with_drums(y, sr, seed=10_000 + i) for i, (c, y) in enumerate(audio.items())}
    subsets = {
        "all": lambda r: r["subset"] != "+drums",
        "progressions": lambda r: r["subset"] == "progression",
        "chorales": lambda r: r["subset"] == "chorale",
        "folk": lambda r: r["subset"] == "folk",
        "progressions + drums": lambda r: r["subset"] == "+drums" and r["of"] == "progression",
        "chorales + drums": lambda r: r["subset"] == "+drums" and r["of"] == "chorale",
        "all + drums": lambda r: r["subset"] == "+drums",
    }
    clips = {**audio, **{f"{c}+drums": y for c, y in drummed.items()}}
    rows = rows + [
        {**r, "clip": f"{r['clip']}+drums", "subset": "+drums", "of": r["subset"]} for r in rows
    ]
    n_by = {name: sum(map(pred, rows)) for name, pred in subsets.items()}
    counts = ", ".join(f"{name} {n}" for name, n in n_by.items())
    n_train = len(load_set(args.data, "train"))
    print(
        f"evaluated on the {args.split} split: {counts} clips. Our key weights were fitted on "
        f"the train split only ({n_train} clips, each also with a drum loop of other seeds); "
        f"train and test share no piece (chorale, folk tune) and no progression type. "
        f"'+ drums': the clips with a synthetic drum loop {DRUMS_DB:+.0f} dB re their RMS."
    )
    clip_s = np.mean([len(y) / sr for y in audio.values()])
    results = {}
    for name, method in methods.items():
        method(next(iter(audio.values())), sr)  # warm up (imports, plans)
        preds, elapsed = {}, 0.0
        for r in rows:
            t0 = time.perf_counter()
            preds[r["clip"]] = method(clips[r["clip"]], sr)
            elapsed += time.perf_counter() - t0
        ms = 1000 * elapsed / len(rows)
        table = {}
        for sub, pred in subsets.items():
            sel = [r for r in rows if pred(r)]
            mirex = np.mean([mirex_score(r["key"], preds[r["clip"]]) for r in sel])
            acc = np.mean([mirex_score(r["key"], preds[r["clip"]]) == 1.0 for r in sel])
            table[sub] = (mirex, acc)
        results[name] = (table, ms, clip_s * 1000 / ms)

    header = f"{'method':30s} " + " ".join(f"{s + ' MIREX/acc':>30s}" for s in subsets)
    print(header + f" {'ms/clip':>8s} {'x realtime':>10s}")
    for name, (table, ms, rtf) in results.items():
        cells = " ".join(f"{table[s][0]:>21.3f} / {table[s][1]:.3f}" for s in subsets)
        print(f"{name:30s} {cells} {ms:8.1f} {rtf:10.0f}")
    for sub in ("all", "all + drums"):
        ess = {n: t[sub][0] for n, (t, _, _) in results.items() if "essentia" in n}
        if ess:
            best = max(ess, key=lambda name: ess[name])
            for ours in ("ours", "ours, as annotate tells it"):
                ratio = results[ours][0][sub][0] / ess[best]
                print(f"{sub}: {ours} / best essentia ({best}) MIREX score: {ratio:.3f}")

    long = np.concatenate(list(audio.values()))[: 180 * sr]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        estimate_key(long, sr=sr)
        times.append(time.perf_counter() - t0)
    print(
        f"ours on {len(long) / sr:.0f} s of audio at {sr} Hz: {1000 * min(times):.0f} ms "
        f"({len(long) / sr / min(times):.0f}x real time, best of 3)"
    )


if __name__ == "__main__":
    main()
