"""Musical key from audio: pitch-class profiles correlated with major/minor key profiles.

The signal's treble and bass pitch-class profiles (:mod:`engine.analysis.chroma`) are
correlated with the 24 rotations of a major and a minor key profile, one profile pair per
register; a key's score is the treble correlation plus :data:`BASS_WEIGHT` times the bass
correlation, and a softmax over the 24 scores gives the confidence.
"""

from __future__ import annotations

import logging

import numpy as np

from engine.analysis.chroma import ChromaConfig, pitch_class_profiles
from engine.errors import AudioError
from engine.labels import KEYS
from engine.types import KeyEstimate

logger = logging.getLogger(__name__)

# Key profiles, index 0 = tonic. Temperley's (Kostka-Payne) profiles, the starting point.
TREBLE_MAJOR = np.array(
    [0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400]
)
TREBLE_MINOR = np.array(
    [0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330]
)
BASS_MAJOR = TREBLE_MAJOR
BASS_MINOR = TREBLE_MINOR
BASS_WEIGHT = 0.5
# Softmax temperature over the 24 correlation scores.
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


def default_chroma_config() -> ChromaConfig:
    """The chroma settings :func:`estimate_key` uses."""
    return ChromaConfig()
