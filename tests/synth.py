"""Test signals, synthesized with a seeded rng: tones, chords in known keys, click tracks."""

from __future__ import annotations

import numpy as np

NOTE = {
    "C": 0,
    "C#": 1,
    "Db": 1,
    "D": 2,
    "Eb": 3,
    "E": 4,
    "F": 5,
    "F#": 6,
    "Gb": 6,
    "G": 7,
    "Ab": 8,
    "A": 9,
    "Bb": 10,
    "B": 11,
}


def midi_hz(m: float) -> float:
    """Frequency of MIDI note ``m`` in Hz."""
    return 440.0 * 2 ** ((m - 69) / 12)


def tone(
    freq: float, duration_s: float, *, sr: int = 22050, harmonics: int = 6, amp: float = 0.2
) -> np.ndarray:
    """A harmonic tone with a soft attack and decay, ``[frames]`` float32."""
    t = np.arange(int(duration_s * sr)) / sr
    y = sum((0.6**h) * np.sin(2 * np.pi * freq * (h + 1) * t) for h in range(harmonics))
    env = np.minimum(1.0, t / 0.02) * np.exp(-t * 1.5)
    return (amp * env * y).astype(np.float32)


def chord(midis: list[int], duration_s: float, *, sr: int = 22050, amp: float = 0.15) -> np.ndarray:
    """Several harmonic tones at once."""
    return np.sum([tone(midi_hz(m), duration_s, sr=sr, amp=amp) for m in midis], axis=0)


def progression(
    tonic: str, mode: str, *, sr: int = 22050, chord_s: float = 1.0, repeats: int = 2
) -> np.ndarray:
    """I-IV-V-I (major) or i-iv-V-i (minor) in the given key, with a bass note, ``[frames]``."""
    root = 48 + NOTE[tonic]
    third = 4 if mode == "major" else 3
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]
    parts = []
    for _ in range(repeats):
        for c in chords:
            midis = [root - 12 + c[0]] + [root + 12 + x for x in c]
            parts.append(chord(midis, chord_s, sr=sr))
    return np.concatenate(parts)


def click_track(bpm: float, duration_s: float, *, sr: int = 22050, seed: int = 0) -> np.ndarray:
    """Short noise-burst clicks at ``bpm``, accent on every fourth, ``[frames]`` float32."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(duration_s * sr), dtype=np.float32)
    n = int(0.015 * sr)
    burst = rng.standard_normal(n).astype(np.float32) * np.exp(-np.arange(n) / (0.003 * sr))
    for i, t in enumerate(np.arange(0.0, duration_s, 60.0 / bpm)):
        start = int(t * sr)
        seg = y[start : start + n]
        seg += (0.9 if i % 4 == 0 else 0.5) * burst[: seg.size]
    return y


def noise(duration_s: float, *, sr: int = 22050, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    """White noise, ``[frames]`` float32."""
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(duration_s * sr))).astype(np.float32)


def drum_loop(bpm: float, duration_s: float, *, sr: int = 22050, seed: int = 0) -> np.ndarray:
    """A pitchless drum loop: swept-sine kick on 1 and 3, noise snare on 2 and 4, hats on
    eighths, each hit slightly varied, ``[frames]`` float32."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(duration_s * sr) + sr, dtype=np.float32)
    beat = 60.0 / bpm
    t_kick = np.arange(int(0.25 * sr)) / sr
    for i, t in enumerate(np.arange(0.0, duration_s, beat / 2)):
        start = int(t * sr)
        if i % 4 == 0:  # kick: 150 -> 45 Hz sweep
            f = 45.0 + 105.0 * np.exp(-t_kick / 0.03)
            hit = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t_kick / 0.12)
        elif i % 4 == 2:  # snare: noise burst
            n = int(0.18 * sr)
            hit = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.05 * sr)) * 0.6
        else:  # hat: short high noise
            n = int(0.05 * sr)
            hit = np.diff(rng.standard_normal(n + 1)) * np.exp(-np.arange(n) / (0.01 * sr)) * 0.2
        hit = hit * rng.uniform(0.85, 1.0)
        y[start : start + hit.size] += hit.astype(np.float32)[: y.size - start]
    return (0.5 * y[: int(duration_s * sr)]).astype(np.float32)


def song_with_change(
    *,
    sr: int = 22050,
    seconds: float = 60.0,
    change_s: float = 30.0,
    keys: tuple[tuple[str, str], tuple[str, str]] = (("C", "major"), ("C", "major")),
    bpms: tuple[float, float] = (120.0, 120.0),
) -> np.ndarray:
    """Chord progressions over a click track, ``[frames]``: ``keys[0]`` and ``bpms[0]`` up to
    ``change_s``, then ``keys[1]`` and ``bpms[1]`` (a steady song when both pairs agree)."""
    parts = []
    for (tonic, mode), bpm, dur in zip(keys, bpms, (change_s, seconds - change_s), strict=True):
        chord_s = 2 * 60.0 / bpm  # a chord every two beats
        reps = int(np.ceil(dur / (4 * chord_s)))
        harmony = progression(tonic, mode, sr=sr, chord_s=chord_s, repeats=reps)[: int(dur * sr)]
        parts.append(harmony + click_track(bpm, dur, sr=sr)[: harmony.size])
    return np.concatenate(parts).astype(np.float32)


def detuned_saw_song(
    tonic: str,
    mode: str,
    *,
    seconds: float = 30.0,
    bpm: float = 126.0,
    detune_cents: float = 25.0,
    drive: float = 6.0,
    sr: int = 22050,
    seed: int = 0,
) -> np.ndarray:
    """An EDM-style loop, ``[frames]`` float32: I-vi-IV-V (major) or i-VI-iv-v (minor), a bar
    each, on three band-limited saws detuned by +-``detune_cents`` per note, a saw bass, a
    sine kick on every beat, all through tanh saturation (``drive``)."""
    rng = np.random.default_rng(seed)
    root = 48 + NOTE[tonic]
    if mode == "major":
        chords = ((0, 4, 7), (-3, 0, 4), (5, 9, 12), (7, 11, 14))
    else:
        chords = ((0, 3, 7), (-4, 0, 3), (5, 8, 12), (7, 10, 14))
    bar_s = 4 * 60.0 / bpm
    n = int(seconds * sr)
    t_bar = np.arange(int(bar_s * sr)) / sr

    def saw(midi: float, cents: tuple[float, ...]) -> np.ndarray:
        out = np.zeros(t_bar.size)
        for c in cents:
            f = midi_hz(midi) * 2 ** (c / 1200)
            phase = rng.uniform(0, 2 * np.pi)
            for h in range(1, int(5000 / f) + 1):
                out += np.sin(2 * np.pi * f * h * t_bar + h * phase) / h
        return out / len(cents)

    y = np.zeros(n + t_bar.size)
    spread = (-detune_cents, 0.0, detune_cents)
    for b in range(int(np.ceil(seconds / bar_s))):
        c = chords[b % 4]
        bar = sum(saw(root + x, spread) for x in c) + 0.8 * saw(root - 12 + c[0], (0.0,))
        start = int(b * bar_s * sr)
        y[start : start + bar.size] += 0.15 * bar
    t_kick = np.arange(int(0.3 * sr)) / sr
    kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-t_kick / 0.03)) / sr)
    kick *= np.exp(-t_kick / 0.15)
    for t in np.arange(0.0, seconds, 60.0 / bpm):
        start = int(t * sr)
        y[start : start + kick.size] += 0.9 * kick
    return (np.tanh(drive * y[:n]) / np.tanh(drive)).astype(np.float32)


VOWEL_FORMANTS = ((800, 1150, 2900), (400, 1600, 2700), (350, 1700, 2700), (450, 800, 2830))


def sung_voice(
    seconds: float, *, f0_hz: float = 220.0, sr: int = 22050, seed: int = 0
) -> np.ndarray:
    """A synthetic singer, ``[frames]`` float32 peaking at 1: a glottal-like source on a
    pentatonic melody (0.5 s notes, portamento, 5.5 Hz vibrato) through the formants of a
    vowel that changes every note."""
    import scipy.signal

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    note = int(0.5 * sr)
    steps = rng.choice([0, 2, 4, 7, 9], size=n // note + 1)
    f0 = np.repeat(f0_hz * 2 ** (steps / 12), note)[:n]
    f0 = scipy.signal.lfilter([0.01], [1, -0.99], f0 - f0[0]) + f0[0]
    f0 = f0 * 2 ** (0.4 * np.sin(2 * np.pi * 5.5 * t) / 12)
    source = np.diff(2 * ((np.cumsum(f0) / sr) % 1.0) - 1.0, prepend=0.0)
    out = np.zeros(n)
    ramp = np.arange(note)
    env = np.minimum(1, ramp / (0.04 * sr)) * np.minimum(1, (note - ramp) / (0.06 * sr))
    for k in range(0, n, note):
        seg = source[k : k + note]
        vowel = VOWEL_FORMANTS[int(rng.integers(len(VOWEL_FORMANTS)))]
        y = np.zeros(seg.size)
        for f, width in zip(vowel, (80, 90, 120), strict=True):
            b, a = scipy.signal.iirpeak(f, f / width, fs=sr)
            y += scipy.signal.lfilter(b, a, seg)
        out[k : k + seg.size] = y * env[: seg.size]
    return (out / np.abs(out).max()).astype(np.float32)


def bass_and_drums(
    tonic: str,
    mode: str,
    *,
    seconds: float = 30.0,
    bpm: float = 140.0,
    detune_cents: float = 25.0,
    drive: float = 2.0,
    sr: int = 22050,
    seed: int = 0,
) -> np.ndarray:
    """A drum-and-bass stem, ``[frames]`` float32: a bass line in eighths through the key's
    degrees (tonic, third, fifth, seventh, a bar of four each, in the first octave), each note
    on two tones of 8 partials detuned by +-``detune_cents`` (a "reese" bass) through tanh
    saturation (``drive``), over :func:`drum_loop`. No instrument above the bass."""
    rng = np.random.default_rng(seed)
    third, seventh = (3, 10) if mode == "minor" else (4, 11)
    line = [26 + NOTE[tonic] + d for d in (0, third, 7, seventh - 12, 5, 2)]
    step = 60.0 / bpm / 2  # eighths
    y = np.zeros(int(seconds * sr))
    n = int(step * sr * 0.95)
    t = np.arange(n) / sr
    envelope = np.minimum(1.0, np.minimum(t / 0.005, (n / sr - t) / 0.02))
    for i in range(int(seconds / step)):
        f0 = midi_hz(line[(i // 4) % len(line)])
        note = sum(
            np.sin(2 * np.pi * f0 * 2 ** (c / 1200) * h * t + rng.uniform(0, 2 * np.pi)) / h
            for c in (-detune_cents, detune_cents)
            for h in range(1, 9)
        )
        start = int(i * step * sr)
        y[start : start + n] += (0.2 * note * envelope)[: y.size - start]
    bass = np.tanh(drive * y) / np.tanh(drive)
    return (0.6 * bass + 0.6 * drum_loop(bpm, seconds, sr=sr, seed=seed)[: y.size]).astype(
        np.float32
    )
