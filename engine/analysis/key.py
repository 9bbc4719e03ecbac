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
# split (other pieces, other progression types) was never used for fitting. L2 penalty 1e-4.
MAJOR_WEIGHTS = np.array(
    [
        [5.846, -4.663, 2.200, -5.140, 4.936, -0.967, -3.701, 6.241, -1.927, 0.841, -7.742, 4.076],
        [1.267, -0.875, 0.269, 0.344, -0.412, 0.729, -1.367, 0.747, -0.190, 0.546, -0.475, -0.584],
        [
            3.507,
            -0.249,
            1.718,
            -1.143,
            0.716,
            -3.313,
            -0.156,
            2.602,
            -1.017,
            -3.694,
            -6.581,
            -2.016,
        ],
        [-1.278, -0.428, 2.412, -0.313, 1.162, 0.166, -1.843, 0.395, -0.689, -0.473, 0.458, -2.542],
    ]
)
MINOR_WEIGHTS = np.array(
    [
        [
            4.657,
            -10.764,
            3.116,
            5.334,
            -3.493,
            -0.234,
            -1.592,
            5.568,
            -2.845,
            -0.125,
            0.892,
            -0.515,
        ],
        [2.002, -1.415, 0.408, 0.680, -0.107, 0.436, -1.042, 0.090, 0.112, -0.954, 1.087, -1.297],
        [4.275, -0.366, 3.418, -0.804, -1.077, -2.720, -0.121, 4.005, 1.892, -1.938, 1.915, 1.145],
        [4.620, -0.349, 0.112, 0.433, 1.204, 3.418, 0.402, -1.421, -0.149, -1.730, -2.262, -1.306],
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
