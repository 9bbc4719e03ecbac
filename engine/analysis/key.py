"""Musical key from audio: pitch-class profiles correlated with major/minor key profiles.

The signal's treble and bass pitch-class profiles (:mod:`engine.analysis.chroma`) are
correlated with the 24 rotations of a major and a minor key profile, one profile pair per
register; a key's score is the treble correlation plus :data:`BASS_WEIGHT` times the bass
correlation, and a softmax over the 24 scores gives the confidence.
"""

from __future__ import annotations

import logging

import numpy as np

from engine.analysis.chroma import pitch_class_profiles
from engine.errors import AudioError
from engine.labels import KEYS
from engine.types import KeyEstimate

logger = logging.getLogger(__name__)

# Key profiles, index 0 = tonic, fitted by `python bench/key_accuracy.py --fit`: the mean
# pitch-class profile (this module's chroma settings) of the clips of each mode in the TRAIN split
# of the labelled set rendered by scripts/render_key_set.py (50 Bach chorales and 50 Essen folk
# tunes, split by piece; 24 chord progressions, split by progression type; FluidR3 GM
# instruments, transposed over all 24 keys), rotated to the tonic and scaled to a maximum of 1. The
# benchmark's TEST split (other pieces, other progressions) was never used for fitting.
TREBLE_MAJOR = np.array(
    [0.832, 0.147, 0.814, 0.131, 0.808, 0.375, 0.271, 1.000, 0.164, 0.585, 0.102, 0.616]
)
TREBLE_MINOR = np.array(
    [0.809, 0.163, 0.787, 0.693, 0.309, 0.615, 0.323, 1.000, 0.315, 0.444, 0.572, 0.403]
)
BASS_MAJOR = np.array(
    [1.000, 0.455, 0.575, 0.210, 0.532, 0.681, 0.269, 0.925, 0.272, 0.362, 0.267, 0.413]
)
BASS_MINOR = np.array(
    [1.000, 0.117, 0.366, 0.466, 0.137, 0.462, 0.133, 0.717, 0.237, 0.181, 0.359, 0.201]
)
# Weight of the bass correlation, chosen by 2-fold cross-validation over train pieces among
# (0.1, 0.25, 0.5, 1.0); kept above 0 so that a bass-only region still gets a key.
BASS_WEIGHT = 0.25
# Softmax temperature over the 24 scores: minimises the negative log-likelihood of the true key
# under the out-of-fold scores of that cross-validation.
TEMPERATURE = 0.05


def estimate_key(y: np.ndarray, *, sr: int, candidates: int = 2) -> KeyEstimate:
    """Estimate the key of a mono signal.

    Args:
        y: mono signal [samples], float.
        sr: sample rate in Hz.
        candidates: how many runner-up keys to return with their scores.

    Returns:
        The best key of :data:`engine.labels.KEYS`, its softmax confidence in [0, 1] and the
        next ``candidates`` keys with their softmax scores, best first. A signal without pitched
        content (silence) gives a uniform distribution and the first key.

    Raises:
        AudioError: if ``y`` is not 1-D, is empty or holds NaN/inf, or ``sr`` is not positive.
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


def key_scores(
    treble: np.ndarray,
    bass: np.ndarray,
    *,
    profiles: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    bass_weight: float = BASS_WEIGHT,
) -> np.ndarray:
    """Correlation score of each of the 24 keys.

    Args:
        treble: treble pitch-class profile [12] (index 0 = C).
        bass: bass pitch-class profile [12].
        profiles: ``(treble_major, treble_minor, bass_major, bass_minor)`` [12] each, tonic
            first; the module's constants when None.
        bass_weight: weight of the bass correlation.

    Returns:
        Scores [24] in :data:`engine.labels.KEYS` order (majors on C..B, then minors).
    """
    t_maj, t_min, b_maj, b_min = profiles or (TREBLE_MAJOR, TREBLE_MINOR, BASS_MAJOR, BASS_MINOR)
    scores = _correlations(treble, t_maj, t_min)
    if bass_weight:
        scores = scores + bass_weight * _correlations(bass, b_maj, b_min)
    return scores


def key_probabilities(
    treble: np.ndarray, bass: np.ndarray, *, temperature: float = TEMPERATURE
) -> np.ndarray:
    """Softmax of :func:`key_scores` [24]; uniform when both profiles are empty."""
    scores = key_scores(treble, bass) / temperature
    z = np.exp(scores - scores.max())
    return z / z.sum()


def _correlations(chroma: np.ndarray, major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``chroma`` [12] with the 12 rotations of each profile -> [24]."""
    c = chroma - chroma.mean()
    norm = np.linalg.norm(c)
    if norm == 0.0:
        return np.zeros(24)
    out = np.empty(24)
    for m, profile in enumerate((major, minor)):
        p = profile - profile.mean()
        p = p / np.linalg.norm(p)
        # Rows: the profile rotated to each tonic.
        rotations = np.stack([np.roll(p, tonic) for tonic in range(12)])
        out[12 * m : 12 * m + 12] = rotations @ c / norm
    return out
