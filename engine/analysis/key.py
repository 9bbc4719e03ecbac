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
# the 24 keys (L2 penalty chosen by 2-fold cross-validation over pieces), fitted on the TRAIN
# split of the labelled set rendered by scripts/render_key_set.py only: 200 Bach chorales and
# 201 Essen folk tunes (split by piece) and 144 chord progressions (split by progression type),
# FluidR3 GM instruments, transposed over all 24 keys. The benchmark's TEST split (other pieces,
# other progression types) was never used for fitting. L2 penalty 1e-4 (CV MIREX 0.877).
MAJOR_WEIGHTS = np.array(
    [
        [5.798, -3.682, 2.073, -5.059, 4.600, -1.167, -3.543, 6.496, -2.088, 0.542, -8.034, 4.064],
        [1.640, -0.582, 0.876, -0.595, -1.271, 0.775, -0.686, 1.320, -0.423, 0.183, -0.602, -0.634],
        [
            3.524,
            -0.100,
            1.825,
            -1.499,
            1.631,
            -2.553,
            -0.152,
            1.809,
            -0.995,
            -3.545,
            -6.666,
            -2.319,
        ],
        [
            -2.127,
            -0.318,
            2.585,
            -0.150,
            1.258,
            -0.247,
            -1.678,
            0.646,
            -0.767,
            -0.214,
            0.467,
            -2.759,
        ],
    ]
)
MINOR_WEIGHTS = np.array(
    [
        [
            4.539,
            -10.586,
            2.625,
            5.176,
            -2.733,
            -0.146,
            -1.092,
            5.664,
            -2.988,
            -0.291,
            0.877,
            -1.045,
        ],
        [1.887, -0.458, 0.653, 0.838, -1.131, 0.458, -0.219, 0.323, 0.043, -2.714, 1.956, -1.634],
        [3.922, -0.456, 3.963, -1.315, -1.207, -1.752, -0.060, 3.883, 1.886, -2.333, 1.585, 0.924],
        [4.949, -0.211, -0.306, 0.787, 0.798, 2.454, 0.269, -2.007, -0.005, -1.185, -1.371, -0.868],
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
