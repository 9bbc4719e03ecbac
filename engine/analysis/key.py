"""Musical key from audio: pitch-class profiles matched against fitted key profiles.

The signal's treble and bass pitch-class profiles (:mod:`engine.analysis.chroma`) are centred
and scaled to unit norm, and each of the 24 keys scores the dot product of them with its key
profile rotated to the key's tonic (one profile per mode and register). With unit-norm key
profiles this is the Krumhansl-Schmuckler correlation; here the profiles' norms also carry the
weight of each register and the softmax temperature, because they were fitted as a multinomial
logistic regression. The softmax over the 24 scores is the confidence.
"""

from __future__ import annotations

import logging

import numpy as np

from engine.analysis.chroma import pitch_class_profiles
from engine.errors import AudioError
from engine.labels import KEYS
from engine.types import KeyEstimate

logger = logging.getLogger(__name__)

# Key profiles, index 0 = tonic, printed by `python bench/key_accuracy.py --fit`: the weights of
# a multinomial logistic regression over the 24 keys (L2 penalty 1e-4, chosen by 2-fold
# cross-validation over pieces) whose inputs are this module's centred, unit-norm treble and
# bass profiles rotated to each candidate tonic. Fitted on the TRAIN split of the labelled set
# rendered by scripts/render_key_set.py only: 200 Bach chorales and 201 Essen folk tunes (split
# by piece) and 48 chord progressions (split by progression type), FluidR3 GM instruments,
# transposed over all 24 keys. The benchmark's TEST split (other pieces, other progression
# types) was never used for fitting or for choosing any setting.
TREBLE_MAJOR = np.array(
    [5.964, -5.584, 4.078, -7.211, 5.203, -1.020, -2.513, 8.036, -1.953, -0.999, -8.120, 4.120]
)
TREBLE_MINOR = np.array(
    [6.011, -13.029, 3.738, 5.212, -2.294, -0.694, -2.353, 8.339, -3.611, -0.745, 0.020, -0.594]
)
BASS_MAJOR = np.array(
    [0.932, -0.619, 1.769, -1.289, 0.149, -0.091, -1.152, 2.025, -0.646, -0.402, -0.763, 0.087]
)
BASS_MINOR = np.array(
    [1.616, 0.005, 0.454, 0.203, -0.587, 0.292, -0.405, 1.287, -0.803, -2.710, 1.725, -1.076]
)

KeyProfiles = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def estimate_key(y: np.ndarray, *, sr: int, candidates: int = 2) -> KeyEstimate:
    """Estimate the key of a mono signal.

    Args:
        y: mono signal [samples], float.
        sr: sample rate in Hz.
        candidates: how many runner-up keys to return with their probabilities.

    Returns:
        The most probable key of :data:`engine.labels.KEYS`, its probability in [0, 1] as the
        confidence and the next ``candidates`` keys with their probabilities, best first. A
        signal without pitched content (silence) gives a uniform distribution and the first key.

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
    treble, bass = pitch_class_profiles(y, sr=sr)
    probs = key_probabilities(treble, bass)
    order = np.argsort(-probs, kind="stable")
    return KeyEstimate(
        key=KEYS[order[0]],
        confidence=float(np.clip(probs[order[0]], 0.0, 1.0)),
        candidates=tuple((KEYS[i], float(probs[i])) for i in order[1 : 1 + candidates]),
    )


def key_features(treble: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """What each key's score is a dot product of: the profiles rotated to its tonic.

    Args:
        treble: treble pitch-class profile [12] (index 0 = C).
        bass: bass pitch-class profile [12].

    Returns:
        ``features`` [24, 24]: row ``k`` (in :data:`KEYS` order) holds the centred, unit-norm
        treble then bass profile rotated so that key ``k``'s tonic is at index 0.
    """
    t, b = _centred_unit(treble), _centred_unit(bass)
    rolled = np.stack([np.concatenate([np.roll(t, -pc), np.roll(b, -pc)]) for pc in range(12)])
    return np.concatenate([rolled, rolled])


def key_scores(
    treble: np.ndarray, bass: np.ndarray, *, profiles: KeyProfiles | None = None
) -> np.ndarray:
    """Score (logit) of each of the 24 keys.

    Args:
        treble: treble pitch-class profile [12] (index 0 = C).
        bass: bass pitch-class profile [12].
        profiles: ``(treble_major, treble_minor, bass_major, bass_minor)`` [12] each, tonic
            first; the module's fitted constants when None.

    Returns:
        Scores [24] in :data:`engine.labels.KEYS` order (majors on C..B, then minors).
    """
    t_maj, t_min, b_maj, b_min = profiles or (TREBLE_MAJOR, TREBLE_MINOR, BASS_MAJOR, BASS_MINOR)
    features = key_features(treble, bass)
    return np.concatenate([
        features[:12] @ np.concatenate([t_maj, b_maj]),
        features[12:] @ np.concatenate([t_min, b_min]),
    ])


def key_probabilities(treble: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """Softmax of :func:`key_scores` [24]; uniform when both profiles are empty."""
    scores = key_scores(treble, bass)
    z = np.exp(scores - scores.max())
    return z / z.sum()


def _centred_unit(v: np.ndarray) -> np.ndarray:
    c = v - v.mean()
    norm = np.linalg.norm(c)
    return c / norm if norm > 0 else c
