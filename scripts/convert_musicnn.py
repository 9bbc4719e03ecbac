"""Convert musicnn's TensorFlow checkpoints to safetensors and write the parity fixture.

One-off: the outputs are committed (``engine/weights/musicnn/*.safetensors`` and
``tests/fixtures/musicnn_parity.npz``); neither TensorFlow nor musicnn is a dependency of the
project. Run it in a throwaway virtual environment outside the repository::

    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/tfenv     # any CPython 3.11
    /tmp/tfenv/bin/pip install tensorflow-cpu tf_keras librosa soundfile mido safetensors
    /tmp/tfenv/bin/pip install --no-deps musicnn                   # 0.1.0: ships TF1 checkpoints
    /tmp/tfenv/bin/python scripts/convert_musicnn.py               # from the repository root

(converted with tensorflow-cpu 2.21.0, librosa 0.11.0, musicnn 0.1.0; needs the fluidsynth +
FluidR3_GM and espeak-ng binaries for the parity clips).

What it does:

1. reads every variable of ``musicnn/<model>/`` (MTT_musicnn, MSD_musicnn) and maps it, name
   by name (:data:`VARIABLE_MAP`), onto the parameter names of
   ``engine.models.musicnn.Musicnn``, transposing kernels from TensorFlow's layouts;
   the Adam slots and step counters are dropped;
2. writes ``<model>.safetensors`` with the config and the 50 tag names in its metadata;
3. renders a handful of clips of different kinds, computes their log-mel in float32 (musicnn's
   own ``batch_data`` casts the mel power to float16, which overflows on loud audio; this is
   patched out here as in the port), runs musicnn's own TensorFlow graph
   (``musicnn.models.define_model``) with the restored checkpoint, and saves the inputs and
   outputs (tag probabilities, penultimate features) to the parity fixture. It also prints the
   outputs of the unpatched float16 preprocessing on the loud clip, for the README.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("convert_musicnn")

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("MTT_musicnn", "MSD_musicnn")
SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


@dataclass(frozen=True)
class Config:
    """Mirror of ``engine.models.musicnn.MusicnnConfig`` (this venv has no torch)."""

    sr: int = SR
    n_fft: int = N_FFT
    hop_length: int = HOP
    n_mels: int = N_MELS
    patch_frames: int = PATCH_FRAMES
    timbral_filters: int = 204
    timbral_heights: tuple[float, ...] = (0.4, 0.7)
    timbral_frames: int = 7
    temporal_filters: int = 51
    temporal_frames: tuple[int, ...] = (128, 64, 32)
    midend_filters: int = 64
    midend_frames: int = 7
    backend_units: int = 200
    n_tags: int = 50
    bn_eps: float = 1e-3


Transform = Callable[[np.ndarray], np.ndarray]


def _conv2d(k: np.ndarray) -> np.ndarray:
    """TF conv2d kernel [kh (time), kw (freq), in, out] -> torch Conv2d [out, in, kh, kw]."""
    return k.transpose(3, 2, 0, 1)


def _midend_conv(k: np.ndarray) -> np.ndarray:
    """TF conv2d kernel [time, channels, 1, out] -> torch Conv1d [out, channels, time].

    The mid end convolves a [B, T, C, 1] map with a [7, C] kernel, i.e. a 1-D convolution over
    time with C input channels.
    """
    return k[:, :, 0, :].transpose(2, 1, 0)


def _dense(k: np.ndarray) -> np.ndarray:
    """TF dense kernel [in, out] -> torch Linear weight [out, in]."""
    return k.T


def _same(k: np.ndarray) -> np.ndarray:
    return k


def _batch_norm(tf_name: str, torch_name: str) -> list[tuple[str, str, Transform]]:
    return [
        (f"{tf_name}/gamma", f"{torch_name}.weight", _same),
        (f"{tf_name}/beta", f"{torch_name}.bias", _same),
        (f"{tf_name}/moving_mean", f"{torch_name}.running_mean", _same),
        (f"{tf_name}/moving_variance", f"{torch_name}.running_var", _same),
    ]


def _conv_block(
    conv: str, bn: str, torch_name: str, transform: Transform
) -> list[tuple[str, str, Transform]]:
    return [
        (f"{conv}/kernel", f"{torch_name}.conv.weight", transform),
        (f"{conv}/bias", f"{torch_name}.conv.bias", _same),
        *_batch_norm(bn, f"{torch_name}.bn"),
    ]


# TensorFlow variable -> PyTorch parameter, with the layout transform. TF1 layers are named in
# creation order (models.py: frontend f74, f77, s1 (128), s2 (64), s3 (32); midend 1-3;
# backend), hence conv2d_N / batch_normalization_N.
VARIABLE_MAP: list[tuple[str, str, Transform]] = [
    *_batch_norm("batch_normalization", "input_bn"),
    *_conv_block("conv2d", "batch_normalization_1", "timbral.0", _conv2d),  # 7 x 38 bands
    *_conv_block("conv2d_1", "batch_normalization_2", "timbral.1", _conv2d),  # 7 x 67 bands
    *_conv_block("conv2d_2", "batch_normalization_3", "temporal.0", _conv2d),  # 128 frames
    *_conv_block("conv2d_3", "batch_normalization_4", "temporal.1", _conv2d),  # 64 frames
    *_conv_block("conv2d_4", "batch_normalization_5", "temporal.2", _conv2d),  # 32 frames
    *_conv_block("conv2d_5", "batch_normalization_6", "midend.0", _midend_conv),
    *_conv_block("conv2d_6", "batch_normalization_7", "midend.1", _midend_conv),
    *_conv_block("conv2d_7", "batch_normalization_8", "midend.2", _midend_conv),
    *_batch_norm("batch_normalization_9", "pool_bn"),  # over the 1506 pooled features
    ("dense/kernel", "dense.weight", _dense),
    ("dense/bias", "dense.bias", _same),
    *_batch_norm("batch_normalization_10", "dense_bn"),
    ("dense_1/kernel", "classifier.weight", _dense),
    ("dense_1/bias", "classifier.bias", _same),
]
DROPPED_SUFFIXES = ("/Adam", "/Adam_1")
DROPPED_NAMES = ("beta1_power", "beta2_power")


def musicnn_dir() -> Path:
    import musicnn

    return Path(musicnn.__file__).resolve().parent


def convert(model: str, out_dir: Path, tags: list[str]) -> None:
    """Write ``out_dir/<model>.safetensors`` from musicnn's checkpoint."""
    import tensorflow as tf
    from safetensors.numpy import save_file

    reader = tf.compat.v1.train.NewCheckpointReader(str(musicnn_dir() / model) + "/")
    names = set(reader.get_variable_to_shape_map())
    used = {tf_name for tf_name, _, _ in VARIABLE_MAP}
    leftover = sorted(
        n for n in names - used if not n.endswith(DROPPED_SUFFIXES) and n not in DROPPED_NAMES
    )
    if leftover or used - names:
        raise SystemExit(f"{model}: unmapped {leftover}, missing {sorted(used - names)}")
    tensors = {
        torch_name: np.ascontiguousarray(fn(reader.get_tensor(tf_name)), dtype=np.float32)
        for tf_name, torch_name, fn in VARIABLE_MAP
    }
    config = asdict(Config())
    if len(tags) != config["n_tags"]:
        raise SystemExit(f"{model}: {len(tags)} tags, expected {config['n_tags']}")
    metadata = {
        "config": json.dumps(config),
        "tags": json.dumps(tags),
        "source": f"musicnn 0.1.0 (github.com/jordipons/musicnn, ISC licence) {model} checkpoint",
        "converted_by": "scripts/convert_musicnn.py",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / f"{model}.safetensors"), metadata=metadata)
    log.info("%s: %d tensors -> %s", model, len(tensors), out_dir / f"{model}.safetensors")


def log_mel(audio: np.ndarray, *, float16: bool = False) -> np.ndarray:
    """musicnn's preprocessing, [frames, 96]; ``float16=True`` reproduces its overflow."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=audio, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS
    ).T
    if float16:  # musicnn's batch_data: 10000 * x overflows float16 for any x > 6.55
        with np.errstate(over="ignore"):
            return np.log10(10000 * mel.astype(np.float16) + 1).astype(np.float32)
    return np.log10(10000 * mel + 1).astype(np.float32)


class TFMusicnn:
    """musicnn's own graph (``musicnn.models.define_model``) with the checkpoint restored."""

    def __init__(self, model: str, n_tags: int) -> None:
        import tensorflow as tf
        from musicnn import models

        tf.compat.v1.disable_eager_execution()
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, N_MELS])
            self.is_training = tf.compat.v1.placeholder(tf.bool)
            logits, *_, penultimate = models.define_model(self.x, self.is_training, model, n_tags)
            self.outputs = [tf.nn.sigmoid(logits), penultimate]
            self.sess = tf.compat.v1.Session(graph=self.graph)
            tf.compat.v1.train.Saver().restore(self.sess, str(musicnn_dir() / model) + "/")

    def __call__(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, pen = self.sess.run(self.outputs, {self.x: patches, self.is_training: False})
        return probs, pen


def _midi(path: Path, notes: list[tuple[int, float, float]], *, program: int, drums: bool) -> None:
    """Write a one-track MIDI file of (pitch, start_s, duration_s) at 120 bpm."""
    import mido

    ticks = 480  # per beat; 0.5 s per beat
    channel = 9 if drums else 0
    events = []
    for pitch, start, dur in notes:
        events.append(
            (
                int(start * 2 * ticks),
                mido.Message("note_on", note=pitch, velocity=100, channel=channel),
            )
        )
        events.append(
            (int((start + dur) * 2 * ticks), mido.Message("note_off", note=pitch, channel=channel))
        )
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    track = mido.MidiTrack()
    if not drums:
        track.append(mido.Message("program_change", program=program, channel=channel, time=0))
    now = 0
    for t, msg in events:
        track.append(msg.copy(time=t - now))
        now = t
    mid = mido.MidiFile(ticks_per_beat=ticks)
    mid.tracks.append(track)
    mid.save(str(path))


def _render(
    notes: list, tmp: Path, name: str, *, program: int = 0, drums: bool = False
) -> np.ndarray:
    import librosa

    mid, wav = tmp / f"{name}.mid", tmp / f"{name}.wav"
    _midi(mid, notes, program=program, drums=drums)
    subprocess.run(
        ["fluidsynth", "-ni", "-g", "0.8", "-r", "44100", "-F", str(wav), SOUNDFONT, str(mid)],
        check=True,
        capture_output=True,
    )
    audio, _ = librosa.load(str(wav), sr=SR, mono=True)
    return audio


def _speech(text: str, voice: str, tmp: Path) -> np.ndarray:
    import librosa

    wav = tmp / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
    audio, _ = librosa.load(str(wav), sr=SR, mono=True)
    return audio


def _fit(audio: np.ndarray, seconds: float = 3.0) -> np.ndarray:
    n = int(seconds * SR)
    return np.pad(audio, (0, max(0, n - len(audio))))[:n].astype(np.float32)


def parity_clips(tmp: Path) -> dict[str, np.ndarray]:
    """3 s clips at 16 kHz of different kinds."""
    rng = np.random.default_rng(4)
    t = np.arange(3 * SR) / SR
    chord = [(p, 0.0, 2.8) for p in (48, 55, 60, 64, 67)]
    beat = [(36, i * 0.5, 0.2) for i in range(6)] + [(38, 0.25 + i * 0.5, 0.2) for i in range(6)]
    beat += [(42, i * 0.125, 0.1) for i in range(24)]
    noise = rng.standard_normal(3 * SR) * 0.9
    clips = {
        "piano_chord": _render(chord, tmp, "piano", program=0),
        "drum_loop": _render(beat, tmp, "drums", drums=True),
        "choir_aahs": _render(chord, tmp, "choir", program=52),
        "speech": _speech(
            "The quick brown fox jumps over the lazy dog near the river bank.", "en+m3", tmp
        ),
        "loud_clipped_noise": np.clip(noise, -0.5, 0.5) * 2.0,
        "sine_440": 0.5 * np.sin(2 * np.pi * 440 * t),
    }
    return {k: _fit(v) for k, v in clips.items()}


def write_fixture(out: Path, tags: dict[str, list[str]]) -> None:
    """Run the TF models on the parity clips and save inputs + outputs."""
    with tempfile.TemporaryDirectory() as d:
        clips = parity_clips(Path(d))
    names = list(clips)
    # Inputs are rounded through float16 to keep the fixture small; TF sees the rounded values.
    patches = np.stack([log_mel(a)[:PATCH_FRAMES] for a in clips.values()]).astype(np.float16)
    # One clip also as PCM, with TF's outputs on librosa's float32 log-mel of it: end-to-end.
    e2e_name = "choir_aahs"
    e2e_pcm = np.round(clips[e2e_name] * 32767).astype(np.int16)
    e2e_audio = e2e_pcm.astype(np.float32) / 32767
    e2e_patch = log_mel(e2e_audio)[None, :PATCH_FRAMES]
    arrays: dict[str, np.ndarray] = {
        "clip_names": np.array(names),
        "logmel": patches,
        "e2e_pcm16": e2e_pcm,
        "e2e_name": np.array(e2e_name),
    }
    loud = log_mel(clips["loud_clipped_noise"], float16=True)
    for model in MODELS:
        net = TFMusicnn(model, len(tags[model]))
        probs, pen = net(patches.astype(np.float32))
        arrays[f"{model}/probs"] = probs.astype(np.float32)
        arrays[f"{model}/penultimate"] = pen.astype(np.float32)
        e2e_probs, e2e_pen = net(e2e_patch)
        arrays[f"{model}/e2e_probs"] = e2e_probs.astype(np.float32)
        arrays[f"{model}/e2e_penultimate"] = e2e_pen.astype(np.float32)
        for i, name in enumerate(names):
            top = np.argsort(-probs[i])[:4]
            log.info(
                "%s %s: %s",
                model,
                name,
                ", ".join(f"{tags[model][j]} {probs[i, j]:.2f}" for j in top),
            )
        f16_probs, _ = net(loud[None, :PATCH_FRAMES])
        top = np.argsort(-f16_probs[0])[:4]
        log.info(
            "%s loud clip with musicnn's float16 log-mel: %d/%d inf bins; top %s",
            model,
            int(np.isinf(loud[:PATCH_FRAMES]).sum()),
            loud[:PATCH_FRAMES].size,
            ", ".join(f"{tags[model][j]} {f16_probs[0, j]:.2f}" for j in top),
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    log.info("parity fixture: %s (%.0f kB)", out, out.stat().st_size / 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "engine/weights/musicnn")
    parser.add_argument("--fixture", type=Path, default=ROOT / "tests/fixtures/musicnn_parity.npz")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # musicnn builds its graph with tf.compat.v1.layers, which need Keras 2 (tf_keras).
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    from musicnn import configuration

    tags = {
        "MTT_musicnn": list(configuration.MTT_LABELS),
        "MSD_musicnn": list(configuration.MSD_LABELS),
    }
    for model in MODELS:
        convert(model, args.weights_dir, tags[model])
    write_fixture(args.fixture, tags)


if __name__ == "__main__":
    main()
