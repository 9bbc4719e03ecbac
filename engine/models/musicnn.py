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

This module is the reference; :func:`export_onnx` writes the ``.onnx`` files the lite tagger
runs in ONNX Runtime (:mod:`engine.models.musicnn_onnx`, which also holds the config and the
mel filterbank so that path never imports torch).

Usage::

    model = Musicnn.from_pretrained("MTT_musicnn")
    logmel = LogMel(model.config)(audio_16k)          # [B, frames, 96]
    out = model(logmel[:, :187])                       # out.logits: [B, 50]
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ModelLoadError
from engine.models.musicnn_onnx import (
    PRETRAINED,
    WEIGHTS_ENV,
    MusicnnConfig,
    file_sha256,
    mel_filterbank,
    onnx_path,
    resolve_weights,
    weights_dir,
)

__all__ = [
    "PRETRAINED",
    "WEIGHTS_ENV",
    "LogMel",
    "Musicnn",
    "MusicnnConfig",
    "MusicnnOutput",
    "export_onnx",
    "mel_filterbank",
    "resolve_weights",
    "weights_dir",
]

log = logging.getLogger(__name__)


class MusicnnOutput(NamedTuple):
    """What :class:`Musicnn` returns.

    Attributes:
        logits: ``[B, n_tags]`` tag logits (apply a sigmoid for probabilities).
        penultimate: ``[B, backend_units]`` features after the penultimate dense layer.
    """

    logits: torch.Tensor
    penultimate: torch.Tensor


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


def export_onnx(
    name_or_path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Export a checkpoint to ONNX for :class:`engine.models.musicnn_onnx.OnnxMusicnn`.

    The file holds the logits graph (dynamic batch and frame axes) and, as metadata, the
    config, the tags and the SHA-256 of the source ``.safetensors``. Needs the ``onnx``
    package (export only; running needs ``onnxruntime`` alone).

    Args:
        name_or_path: as for :meth:`Musicnn.from_pretrained`.
        out: where to write; default beside the weights (``<stem>.onnx``).

    Returns:
        The written path.
    """
    import onnx

    weights = resolve_weights(name_or_path)
    model = Musicnn.from_pretrained(weights)
    dest = Path(out) if out is not None else onnx_path(weights)

    class _Logits(nn.Module):
        def __init__(self, net: Musicnn) -> None:
            super().__init__()
            self.net = net

        def forward(self, logmel: torch.Tensor) -> torch.Tensor:
            return self.net(logmel).logits

    example = torch.zeros(2, model.config.patch_frames, model.config.n_mels)
    torch.onnx.export(
        _Logits(model).eval(),
        (example,),
        str(dest),
        input_names=["logmel"],
        output_names=["logits"],
        dynamic_axes={"logmel": {0: "patches", 1: "frames"}, "logits": {0: "patches"}},
        dynamo=False,
    )
    proto = onnx.load(str(dest))
    for key, value in (
        ("config", model.config.to_json()),
        ("tags", json.dumps(list(model.tags))),
        ("source_sha256", file_sha256(weights)),
    ):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(dest))
    return dest
