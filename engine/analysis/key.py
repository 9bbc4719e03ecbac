"""Musical key from audio: pitch-class profiles and triads matched against fitted key profiles.

The signal's treble and bass pitch-class profiles and its triad histogram
(:mod:`engine.analysis.chroma`) are rotated to each candidate tonic, and each of the 24 keys
scores the dot product of them with its mode's key weights. For the centred, unit-norm treble
profile alone and a unit-norm weight vector this is the Krumhansl-Schmuckler correlation; here
the weights' norms also carry the weight of each feature and the softmax temperature, because
they were fitted as a multinomial logistic regression. The softmax over the 24 scores is the
confidence.
"""

from __future__ import annotations

import logging

import numpy as np

from engine.analysis.chroma import PitchProfiles, pitch_profiles
from engine.errors import AudioError
from engine.labels import KEYS
from engine.types import KeyEstimate

logger = logging.getLogger(__name__)

# Key weights per mode, [4, 12]: rows weigh the treble profile, the bass profile, the major-triad
# histogram and the minor-triad histogram, each rotated so that index 0 is the tonic. Printed by
# `python bench/key_accuracy.py --fit`: the weights of a multinomial logistic regression over
# the 24 keys (L2 penalty chosen by 2-fold cross-validation over pieces, on the log-probability
# of the true key), fitted on the TRAIN split of the labelled set rendered by
# scripts/render_key_set.py only: 200 Bach chorales and 201 Essen folk tunes (split by piece)
# and 144 chord progressions (split by progression type), FluidR3 GM instruments, transposed
# over all 24 keys, each clip as rendered and with a drum loop mixed in. The benchmark's TEST
# split (other pieces, other progression types) was never used for fitting. L2 penalty 1e-4;
# profiles read above a 30 dB floor (`ChromaConfig.profile_range_db`).
MAJOR_WEIGHTS = np.array(
    [
        [5.574, -2.523, 2.024, -4.686, 4.732, -0.002, -3.257, 6.342, -2.445, 0.156, -9.076, 3.162],
        [1.308, -1.128, 0.147, 0.260, -0.165, 1.157, -0.974, 0.698, -0.498, 0.428, -0.150, -1.081],
        [
            3.243,
            -0.061,
            1.677,
            -1.285,
            1.959,
            -3.807,
            -0.684,
            2.247,
            -1.203,
            -2.781,
            -6.245,
            -2.166,
        ],
        [
            -0.132,
            -0.275,
            3.095,
            -0.418,
            0.208,
            -0.164,
            -2.502,
            0.037,
            -0.239,
            -0.154,
            0.670,
            -2.191,
        ],
    ]
)
MINOR_WEIGHTS = np.array(
    [
        [4.352, -11.093, 3.177, 5.063, -3.715, 0.461, -1.008, 5.259, -1.929, -1.277, 0.260, 0.449],
        [1.970, -1.315, 0.327, 0.732, 0.006, 0.526, -1.203, 0.054, 0.348, -0.958, 0.968, -1.454],
        [4.581, 0.133, 3.541, -0.683, -1.337, -2.334, -0.018, 2.746, 1.058, -1.754, 1.968, 1.207],
        [4.989, -0.319, -0.035, 0.424, 0.159, 2.740, 0.460, -2.071, -0.517, -0.502, -2.382, -0.881],
    ]
)


def estimate_key(y: np.ndarray, *, sr: int, candidates: int = 2) -> KeyEstimate:
    """Estimate the key of a mono signal.

    Args:
        y: mono signal [samples], float.
        sr: sample rate in Hz.
        candidates: how many runner-up keys to return with their probabilities.

    Returns:
        The most probable key of :data:`engine.labels.KEYS`, its probability in [0, 1] as the
        confidence, the next ``candidates`` keys with their probabilities, best first, all 24
        probabilities (the evidence the track-level decoder weighs) and the signal's tonality
        (:attr:`PitchProfiles.tonality`). A signal without pitched content (silence) gives a
        uniform distribution, the first key and tonality 0.

    Raises:
        AudioError: if ``y`` is not 1-D, is empty or holds NaN/inf, or ``sr`` is not positive.
        ValueError: if ``candidates`` is not in [0, 23].
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise AudioError(f"key estimation needs a mono signal [samples], got shape {y.shape}")
    if y.size == 0:
        raise AudioError("key estimation got an empty signal (0 samples)")
    if sr <= 0:
        raise AudioError(f"sample rate must be positive, got sr={sr}")
    if not np.all(np.isfinite(y)):
        raise AudioError("key estimation got a signal with NaN or infinite samples")
    if not 0 <= candidates < len(KEYS):
        raise ValueError(f"candidates must be in [0, {len(KEYS) - 1}], got {candidates}")
    profiles = pitch_profiles(y, sr=sr)
    probs = key_probabilities(profiles)
    order = np.argsort(-probs, kind="stable")
    return KeyEstimate(
        key=KEYS[order[0]],
        confidence=float(np.clip(probs[order[0]], 0.0, 1.0)),
        candidates=tuple((KEYS[i], float(probs[i])) for i in order[1 : 1 + candidates]),
        probabilities=tuple(round(float(p), 5) for p in probs),
        tonality=round(profiles.tonality, 4),
    )


def key_features(profiles: PitchProfiles) -> np.ndarray:
    """What each key's score is a dot product of: the profiles rotated to its tonic.

    Args:
        profiles: a signal's pitch-class profiles and triad histogram.

    Returns:
        ``features`` [24, 48]: row ``k`` (in :data:`KEYS` order) holds the centred, unit-norm
        treble profile, the centred, unit-norm bass profile, the major-triad histogram and the
        minor-triad histogram, each rotated so that key ``k``'s tonic is at index 0.
    """
    parts = (
        _centred_unit(profiles.treble),
        _centred_unit(profiles.bass),
        profiles.chords[:12],
        profiles.chords[12:],
    )
    rolled = np.stack([np.concatenate([np.roll(p, -pc) for p in parts]) for pc in range(12)])
    return np.concatenate([rolled, rolled])


def key_scores(
    profiles: PitchProfiles, *, weights: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Score (logit) of each of the 24 keys.

    Args:
        profiles: a signal's pitch-class profiles and triad histogram.
        weights: ``(major, minor)`` key weights [4, 12] each (see :data:`MAJOR_WEIGHTS`);
            the module's fitted constants when None.

    Returns:
        Scores [24] in :data:`engine.labels.KEYS` order (majors on C..B, then minors).
    """
    major, minor = weights or (MAJOR_WEIGHTS, MINOR_WEIGHTS)
    features = key_features(profiles)
    return np.concatenate([features[:12] @ major.ravel(), features[12:] @ minor.ravel()])


def key_probabilities(profiles: PitchProfiles) -> np.ndarray:
    """Softmax of :func:`key_scores` [24]; uniform when nothing pitched was found."""
    scores = key_scores(profiles)
    z = np.exp(scores - scores.max())
    return z / z.sum()


def _centred_unit(v: np.ndarray) -> np.ndarray:
    c = v - v.mean()
    norm = np.linalg.norm(c)
    return c / norm if norm > 0 else c
