"""musicnn without torch: its config, its log-mel in numpy, and the network in ONNX Runtime.

The lite tagger's fast path. :mod:`engine.models.musicnn` (PyTorch) stays the reference and
writes the ``.onnx`` files (:func:`engine.models.musicnn.export_onnx`); this module only reads
them, so a process that tags with ONNX Runtime never imports torch (about 1.7 s of start-up).
An exported file carries its config, its tags and the SHA-256 of the ``.safetensors`` it was
exported from in its metadata; a file whose source no longer matches is refused.

Importing this module imports numpy only; the log-mel imports scipy.fft, :class:`OnnxMusicnn`
imports onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelLoadError

log = logging.getLogger(__name__)

WEIGHTS_ENV = "SONICVERSE_MUSICNN_DIR"
PRETRAINED: tuple[str, ...] = ("MTT_musicnn", "MSD_musicnn")
"""Names of the shipped checkpoints (MagnaTagATune and Million Song Dataset, 50 tags each)."""


@dataclass(frozen=True)
class MusicnnConfig:
    """Hyper-parameters of a musicnn network and of its log-mel input."""

    sr: int = 16000  # sample rate (Hz) the model was trained at
    n_fft: int = 512  # STFT size in samples (Hann window of the same length)
    hop_length: int = 256  # STFT hop in samples (62.5 frames/s at 16 kHz)
    n_mels: int = 96  # mel bands (librosa slaney mel, slaney-normalised filters)
    patch_frames: int = 187  # frames per input patch: 3 s, as in training
    timbral_filters: int = 204  # filters of each timbral conv: int(1.6 * 128)
    timbral_heights: tuple[float, ...] = (0.4, 0.7)  # timbral kernel heights, fraction of n_mels
    timbral_frames: int = 7  # timbral kernel length in frames
    temporal_filters: int = 51  # filters of each temporal conv: int(1.6 * 32)
    temporal_frames: tuple[int, ...] = (128, 64, 32)  # temporal kernel lengths in frames (1 band)
    midend_filters: int = 64  # channels of the three mid-end convs
    midend_frames: int = 7  # mid-end kernel length in frames
    backend_units: int = 200  # width of the penultimate dense layer
    n_tags: int = 50  # output tags
    bn_eps: float = 1e-3  # batch-norm epsilon (TensorFlow's default)

    @property
    def frontend_channels(self) -> int:
        """Channels the front end concatenates: timbral then temporal branches."""
        return (
            len(self.timbral_heights) * self.timbral_filters
            + len(self.temporal_frames) * self.temporal_filters
        )

    @property
    def pooled_features(self) -> int:
        """Back-end input width: (front end + 3 mid-end layers) x (max, mean)."""
        return 2 * (self.frontend_channels + 3 * self.midend_filters)

    @classmethod
    def tiny(cls) -> MusicnnConfig:
        """A small random-weight variant for tests (same input format, 8 tags)."""
        return cls(
            timbral_filters=8,
            temporal_filters=4,
            temporal_frames=(16, 8),
            midend_filters=8,
            backend_units=16,
            n_tags=8,
        )

    def to_json(self) -> str:
        """JSON form stored in the safetensors (and ONNX) metadata."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MusicnnConfig:
        """Inverse of :meth:`to_json` (lists become tuples)."""
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown musicnn config key(s) {unknown}; valid: {sorted(known)}")
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return cls(**kwargs)


def mel_filterbank(*, sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa's default mel filterbank (slaney mel scale, slaney area normalisation).

    Equals ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`` (fmin 0, fmax sr / 2).

    Returns:
        ``[n_mels, 1 + n_fft // 2]`` float32 weights.
    """
    fft_hz = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_points = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2)
    mel_hz = _mel_to_hz(mel_points)
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.astype(np.float32)


_F_SP = 200.0 / 3  # slaney mel scale: Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: float | np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    log_part = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    log_part = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log_part, mel * _F_SP)


class NumpyLogMel:
    """musicnn's input, ``log10(10000 * mel_power + 1)``, in numpy (float32).

    The same centred, zero-padded, Hann-windowed power STFT as
    :class:`engine.models.musicnn.LogMel` (agrees to float32 rounding).
    """

    def __init__(self, config: MusicnnConfig) -> None:
        self.config = config
        n = config.n_fft
        # torch.hann_window is periodic: 0.5 - 0.5 cos(2 pi k / n)
        self.window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
        self.mel_fb = mel_filterbank(sr=config.sr, n_fft=n, n_mels=config.n_mels)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel spectrogram of one region.

        Args:
            audio: ``[samples]`` mono float32 at ``config.sr``.

        Returns:
            ``[frames, n_mels]`` float32 with ``frames = 1 + samples // hop_length``.
        """
        import scipy.fft  # single-precision transforms: several times numpy.fft's speed

        c = self.config
        x = np.pad(np.asarray(audio, dtype=np.float32), (c.n_fft // 2, c.n_fft // 2))
        frames = 1 + (x.size - c.n_fft) // c.hop_length
        view = np.lib.stride_tricks.sliding_window_view(x, c.n_fft)[:: c.hop_length][:frames]
        spec = scipy.fft.rfft(view * self.window, axis=1)  # [frames, 1 + n_fft // 2]
        power = (spec.real.astype(np.float32) ** 2 + spec.imag.astype(np.float32) ** 2).astype(
            np.float32
        )
        mel = power @ self.mel_fb.T  # [frames, n_mels]
        return np.log10(np.float32(10000.0) * mel + np.float32(1.0)).astype(np.float32)


class OnnxMusicnn:
    """A musicnn network exported to ONNX, run by ONNX Runtime on the CPU.

    Call it on ``[B, T, n_mels]`` float32 log-mel patches; it returns ``[B, n_tags]`` logits.

    Attributes:
        config: the hyper-parameters (from the file's metadata).
        tags: the name of each output.
        source_sha256: SHA-256 of the ``.safetensors`` the file was exported from.
        digest: SHA-256 of the ``.onnx`` file itself (for fingerprints).
    """

    def __init__(self, path: Path, *, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0: one per core
        opts.inter_op_num_threads = 1
        # Threads sleep instead of spinning between ops: spinning workers fight a busy DAW
        # for the cores they share and make everyone slower.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        data = path.read_bytes()
        try:
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
            meta = self.session.get_modelmeta().custom_metadata_map
            self.config = MusicnnConfig.from_json(meta["config"])
            self.tags: tuple[str, ...] = tuple(json.loads(meta["tags"]))
            self.source_sha256 = meta["source_sha256"]
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{path}: not an exported musicnn ONNX file ({exc})") from exc
        self.digest = hashlib.sha256(data).hexdigest()
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, logmel: np.ndarray) -> np.ndarray:
        """``[B, T, n_mels]`` float32 -> ``[B, n_tags]`` logits."""
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(logmel, np.float32)})
        return np.asarray(out[0])


def onnx_path(weights: Path) -> Path:
    """Where the ONNX export of a ``.safetensors`` file lives: beside it, ``<stem>.onnx``."""
    return weights.with_suffix(".onnx")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_onnx(weights: Path, *, threads: int = 0) -> OnnxMusicnn | None:
    """The ONNX export of ``weights`` when it exists, ONNX Runtime imports and the export's
    source matches ``weights``; None otherwise (the caller falls back to PyTorch)."""
    path = onnx_path(weights)
    if not path.is_file():
        log.debug("no ONNX export at %s", path)
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        log.debug("onnxruntime is not installed; musicnn runs in PyTorch")
        return None
    net = OnnxMusicnn(path, threads=threads)
    if net.source_sha256 != file_sha256(weights):
        log.warning("%s was exported from other weights than %s; ignoring it", path, weights)
        return None
    return net


def weights_dir() -> Path:
    """Folder of the shipped weights: ``$SONICVERSE_MUSICNN_DIR`` or ``engine/weights/musicnn``."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "weights" / "musicnn"


def resolve_weights(name_or_path: str | os.PathLike[str]) -> Path:
    """The ``.safetensors`` file meant by a shipped name, a file or a folder.

    Raises:
        ModelLoadError: naming what was looked for and the valid names.
    """
    text = str(name_or_path)
    if text in PRETRAINED:
        path = weights_dir() / f"{text}.safetensors"
        if not path.is_file():
            raise ModelLoadError(
                f"musicnn weights {text!r} not found at {path}; they ship with the package "
                f"(reinstall it, or regenerate them with scripts/convert_musicnn.py)"
            )
        return path
    path = Path(name_or_path)
    if path.is_dir():
        found = sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            raise ModelLoadError(
                f"musicnn weights folder {path} holds {len(found)} .safetensors files "
                f"({', '.join(p.name for p in found) or 'none'}); expected exactly one, "
                f"or pass the file itself"
            )
        path = found[0]
    if path.suffix != ".safetensors" or not path.is_file():
        raise ModelLoadError(
            f"musicnn weights {text!r}: expected one of {', '.join(PRETRAINED)}, a .safetensors "
            f"file or a folder holding one; {path} is not a .safetensors file"
        )
    return path
