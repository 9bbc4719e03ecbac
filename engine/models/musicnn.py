"""musicnn: a musically motivated CNN for music audio tagging, ported to PyTorch.

Pons & Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging",
ISMIR late-breaking demo, 2019 (https://github.com/jordipons/musicnn, ISC licence). The
weights shipped in ``engine/weights/musicnn/`` were converted from the TensorFlow checkpoints
of the ``musicnn`` 0.1.0 wheel by ``scripts/convert_musicnn.py``; parity with TensorFlow is
checked by ``tests/engine/test_musicnn.py``.

The network reads 3 s patches of a 96-band log-mel spectrogram (16 kHz, 512-point FFT, hop
256, so 187 frames per patch) and returns 50 tag logits:

- front end: a batch-normalised input feeds "timbral" convolutions (7 frames x 40 % / 70 %
  of the mel bands) and "temporal" convolutions (128 / 64 / 32 frames x 1 band), each
  followed by ReLU, batch norm and a max over frequency;
- mid end: three 1-D convolutions over time (7 frames) with residual connections, whose
  outputs are densely concatenated with the front end's;
- back end: max and mean over time, batch norm, a dense layer (ReLU + batch norm: the
  "penultimate" features) and the output layer.

Preprocessing differs from musicnn's in one place, on purpose: musicnn casts the mel power
spectrogram to float16 before ``log10(10000 * x + 1)``, which overflows to ``inf`` on loud
audio (every loud track then yields the same tags). Here everything is float32; the
TensorFlow reference outputs used for the parity test were computed with the same fix.

Usage::

    model = Musicnn.from_pretrained("MTT_musicnn")
    logmel = LogMel(model.config)(audio_16k)          # [B, frames, 96]
    out = model(logmel[:, :187])                       # out.logits: [B, 50]
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
        """JSON form stored in the safetensors metadata."""
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


class MusicnnOutput(NamedTuple):
    """What :class:`Musicnn` returns.

    Attributes:
        logits: ``[B, n_tags]`` tag logits (apply a sigmoid for probabilities).
        penultimate: ``[B, backend_units]`` features after the penultimate dense layer.
    """

    logits: torch.Tensor
    penultimate: torch.Tensor


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


class LogMel(nn.Module):
    """musicnn's input: ``log10(10000 * mel_power + 1)`` computed in float32.

    The STFT is centred with zero padding (librosa >= 0.10's ``melspectrogram`` defaults),
    Hann window, power 2.
    """

    window: torch.Tensor
    mel_fb: torch.Tensor

    def __init__(self, config: MusicnnConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        fb = mel_filterbank(sr=config.sr, n_fft=config.n_fft, n_mels=config.n_mels)
        self.register_buffer("mel_fb", torch.from_numpy(fb), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram.

        Args:
            audio: ``[B, samples]`` mono float32 at ``config.sr``.

        Returns:
            ``[B, frames, n_mels]`` with ``frames = 1 + samples // hop_length``.
        """
        c = self.config
        spec = torch.stft(
            audio,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # [B, 1 + n_fft // 2, frames]
        mel = torch.matmul(self.mel_fb, power)  # [B, n_mels, frames]
        return torch.log10(10000.0 * mel + 1.0).transpose(1, 2)


class _FrontendBranch(nn.Module):
    """Conv (time x freq) -> ReLU -> batch norm -> max over frequency."""

    def __init__(self, filters: int, frames: int, bands: int, eps: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, filters, kernel_size=(frames, bands))
        self.bn = nn.BatchNorm2d(filters, eps=eps)
        # TensorFlow pads time to keep the length ("same"): the extra frame of an even
        # kernel goes after, as in F.pad's (before, after) order.
        self.pad = ((frames - 1) // 2, frames - 1 - (frames - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T, F]`` -> ``[B, filters, T]``."""
        x = self.conv(F.pad(x, (0, 0, *self.pad)))  # [B, filters, T, F']
        if self.training:
            return self.bn(F.relu(x)).amax(dim=3)
        # Same result, without ReLU and batch norm over the whole [B, filters, T, F'] map:
        # ReLU is monotone and batch norm is a per-channel affine map a * x + b, so the max
        # over frequency is a * relu(max x) + b where a >= 0 and a * relu(min x) + b elsewhere.
        low, high = torch.aminmax(x, dim=3)
        mean, var = self.bn.running_mean, self.bn.running_var
        assert mean is not None and var is not None  # eval-mode batch norm keeps statistics
        scale = self.bn.weight * torch.rsqrt(var + self.bn.eps)
        shift = self.bn.bias - mean * scale
        picked = torch.where((scale >= 0)[:, None], high, low).relu()
        return picked * scale[:, None] + shift[:, None]


class _MidendLayer(nn.Module):
    """1-D conv over time ('same' padding) -> ReLU -> batch norm."""

    def __init__(self, in_channels: int, filters: int, frames: int, eps: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, kernel_size=frames, padding=frames // 2)
        self.bn = nn.BatchNorm1d(filters, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T]`` -> ``[B, filters, T]``."""
        return self.bn(F.relu(self.conv(x)))


class Musicnn(nn.Module):
    """The musicnn tagger (front end, dense residual mid end, temporal-pooling back end).

    Attributes:
        config: the hyper-parameters.
        tags: the name of each output, ``len(tags) == config.n_tags``.
    """

    def __init__(self, config: MusicnnConfig, tags: tuple[str, ...] | None = None) -> None:
        super().__init__()
        c = config
        self.config = config
        self.tags = tags if tags is not None else tuple(f"tag{i}" for i in range(c.n_tags))
        if len(self.tags) != c.n_tags:
            raise ValueError(f"{len(self.tags)} tag names for n_tags={c.n_tags}")
        self.input_bn = nn.BatchNorm2d(1, eps=c.bn_eps)
        self.timbral = nn.ModuleList(
            _FrontendBranch(c.timbral_filters, c.timbral_frames, int(h * c.n_mels), c.bn_eps)
            for h in c.timbral_heights
        )
        self.temporal = nn.ModuleList(
            _FrontendBranch(c.temporal_filters, frames, 1, c.bn_eps) for frames in c.temporal_frames
        )
        self.midend = nn.ModuleList(
            _MidendLayer(
                c.frontend_channels if i == 0 else c.midend_filters,
                c.midend_filters,
                c.midend_frames,
                c.bn_eps,
            )
            for i in range(3)
        )
        self.pool_bn = nn.BatchNorm1d(c.pooled_features, eps=c.bn_eps)
        self.dense = nn.Linear(c.pooled_features, c.backend_units)
        self.dense_bn = nn.BatchNorm1d(c.backend_units, eps=c.bn_eps)
        self.classifier = nn.Linear(c.backend_units, c.n_tags)

    def forward(self, logmel: torch.Tensor) -> MusicnnOutput:
        """Tag logits of log-mel patches.

        Args:
            logmel: ``[B, T, n_mels]`` (patches, frames @62.5 Hz, mel bands); T is
                ``config.patch_frames`` for the trained behaviour (any T >= 1 runs).

        Returns:
            logits ``[B, n_tags]`` and penultimate features ``[B, backend_units]``.
        """
        x = self.input_bn(logmel.unsqueeze(1))  # [B, 1, T, F]
        front = torch.cat([branch(x) for branch in (*self.timbral, *self.temporal)], dim=1)
        h1 = self.midend[0](front)  # [B, midend, T]
        h2 = self.midend[1](h1) + h1
        h3 = self.midend[2](h2) + h2
        dense = torch.cat([front, h1, h2, h3], dim=1)  # [B, C, T]
        # TensorFlow flattens [B, C, (max, mean)], so max and mean alternate per channel.
        pooled = torch.stack([dense.amax(dim=2), dense.mean(dim=2)], dim=2).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return MusicnnOutput(self.classifier(penultimate), penultimate)

    @classmethod
    def tiny(cls, *, seed: int = 0) -> Musicnn:
        """A small model with random weights and random batch-norm statistics, for tests."""
        torch.manual_seed(seed)
        model = cls(MusicnnConfig.tiny())
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                nn.init.uniform_(m.running_mean, -0.5, 0.5)
                nn.init.uniform_(m.running_var, 0.5, 1.5)
        return model.eval()

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
    ) -> Musicnn:
        """Load converted weights (never downloads).

        Args:
            name_or_path: a shipped name (:data:`PRETRAINED`, looked up in
                :func:`weights_dir`), a ``.safetensors`` file, or a folder holding exactly one.
            device: where to put the model.

        Returns:
            The model in eval mode.

        Raises:
            ModelLoadError: unknown name, missing file, or a file that is not a musicnn
                checkpoint.
        """
        from safetensors import SafetensorError, safe_open

        path = resolve_weights(name_or_path)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
            config = MusicnnConfig.from_json(meta["config"])
            tags = tuple(json.loads(meta["tags"]))
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise ModelLoadError(f"{path}: not a converted musicnn checkpoint ({exc})") from exc
        model = cls(config, tags)
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ModelLoadError(
                f"{path}: weights do not match the config (missing {missing}, "
                f"unexpected {unexpected})"
            )
        log.debug("loaded musicnn %s (%d tags) from %s", path.stem, len(tags), path)
        return model.to(device).eval()


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
