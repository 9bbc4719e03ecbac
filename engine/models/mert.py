"""MERT-v1 as a plain ``transformers.HubertModel``: no ``trust_remote_code``.

MERT-v1's modelling code is HuBERT's with a few switches that stay off in the released 95M
and 330M checkpoints (no CQT front end, no deepnorm), so its
``config.json`` maps onto a :class:`~transformers.HubertConfig` and its weights load
strictly. Old checkpoints store the positional convolution's weight norm as ``weight_g`` /
``weight_v``; recent torch names them ``parametrizations.weight.original0/1``.

Input: mono audio at the config's ``sample_rate`` (24 kHz), normalised per clip to zero
mean and unit variance as MERT's feature extractor does. Output: every hidden state,
``[N, L, T, D]`` (clips, layers = embeddings + blocks, frames @75 Hz, dims); MERT-95M gives
``L = 13``, ``D = 768``.
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import HubertConfig, HubertModel

from engine.errors import ModelLoadError
from engine.models.checkpoint import read_state_dict, state_files

log = logging.getLogger(__name__)

DEFAULT_SR = 24000  # MERT-v1's rate, used when a config.json does not state one
NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm's epsilon

# Keys of MERT's config.json that are MERT-only switches; each must hold the value that
# makes the model a HuBERT, or loading stops. (``attention_relax`` is not one: MERT's relaxed
# attention subtracts a per-row maximum before the softmax, which leaves it unchanged.)
_MERT_SWITCHES: dict[str, Any] = {
    "feature_extractor_cqt": False,
    "deepnorm": False,
}

# Parameters HubertModel creates for training-time masking only; a checkpoint may lack them.
_TRAINING_ONLY = frozenset({"masked_spec_embed"})


@dataclass
class Mert:
    """A loaded MERT encoder.

    Attributes:
        model: the HuBERT network, in eval mode.
        sr: input sample rate in Hz.
        name: where it came from (folder or ``"tiny"``), for logs and fingerprints.
    """

    model: HubertModel
    sr: int
    name: str

    @property
    def config(self) -> HubertConfig:
        """The HuBERT config."""
        return self.model.config

    @property
    def layers(self) -> int:
        """Hidden states returned per clip (embeddings + transformer blocks)."""
        return int(self.config.num_hidden_layers) + 1

    @property
    def dim(self) -> int:
        """Hidden size."""
        return int(self.config.hidden_size)

    @property
    def hop(self) -> int:
        """Samples per output frame (product of the conv strides: 320 -> 75 Hz at 24 kHz)."""
        hop = 1
        for s in self.config.conv_stride:
            hop *= int(s)
        return hop

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return next(self.model.parameters()).device

    def frames(self, samples: int) -> int:
        """Output frames for an input of ``samples`` samples."""
        n = samples
        for k, s in zip(self.config.conv_kernel, self.config.conv_stride, strict=True):
            n = (n - int(k)) // int(s) + 1
        return max(n, 0)

    @torch.inference_mode()
    def hidden_states(self, audio: torch.Tensor) -> torch.Tensor:
        """All hidden states of a batch of equal-length clips.

        Args:
            audio: ``[N, samples]`` mono float audio at :attr:`sr`, unnormalised.

        Returns:
            ``[N, L, T, D]`` float tensor (clips, layers, frames @ sr/hop Hz, dims).
        """
        p = next(self.model.parameters())
        x = normalize(audio.to(device=p.device, dtype=torch.float32)).to(p.dtype)
        out = self.model(x, output_hidden_states=True)
        return torch.stack(out.hidden_states, dim=1)


def normalize(audio: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit variance per clip, as MERT's ``Wav2Vec2FeatureExtractor``.

    Args:
        audio: ``[N, samples]``.
    """
    mean = audio.mean(dim=-1, keepdim=True)
    var = audio.var(dim=-1, keepdim=True, unbiased=False)
    return (audio - mean) / torch.sqrt(var + NORM_EPS)


def hubert_config(raw: dict[str, Any], *, source: str = "config.json") -> HubertConfig:
    """A :class:`HubertConfig` from MERT's ``config.json``.

    Raises:
        ModelLoadError: a MERT-only switch is on (the weights would not mean the same).
    """
    for key, plain in _MERT_SWITCHES.items():
        if key in raw and raw[key] != plain:
            raise ModelLoadError(
                f"{source}: {key}={raw[key]!r} needs MERT's own modelling code; only "
                f"checkpoints with {key}={plain!r} (MERT-v1-95M/330M) load as HuBERT"
            )
    accepted = set(inspect.signature(HubertConfig.__init__).parameters) - {"self", "kwargs"}
    kwargs = {k: v for k, v in raw.items() if k in accepted}
    config = HubertConfig(**kwargs)
    config.sample_rate = int(raw.get("sample_rate", DEFAULT_SR))
    return config


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename old weight-norm keys and drop a model prefix.

    ``encoder.pos_conv_embed.conv.weight_g`` -> ``...conv.parametrizations.weight.original0``,
    ``weight_v`` -> ``original1``; a leading ``hubert.`` or ``mert.`` (a model saved with a
    head) is removed.
    """
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        for prefix in ("hubert.", "mert.", "model."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
                break
        if k.endswith(".weight_g"):
            k = k[: -len("weight_g")] + "parametrizations.weight.original0"
        elif k.endswith(".weight_v"):
            k = k[: -len("weight_v")] + "parametrizations.weight.original1"
        out[k] = v
    return out


def load_weights(model: HubertModel, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load ``state`` strictly (training-only masking parameters may be absent).

    Raises:
        ModelLoadError: naming missing and unexpected keys or mismatched shapes.
    """
    state = convert_state_dict(state)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state) - _TRAINING_ONLY)
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelLoadError(
            f"{source}: weights do not match the HuBERT built from config.json: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ModelLoadError(
                f"{source}: {k} has shape {tuple(v.shape)}, the config implies "
                f"{tuple(expected[k].shape)}"
            )
    for k in _TRAINING_ONLY - set(state):
        if k in expected:
            state[k] = expected[k]
    model.load_state_dict(state, strict=True)


def from_pretrained(
    folder: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Mert:
    """Load MERT from a local folder holding ``config.json`` and its weights.

    Args:
        folder: e.g. the HF snapshot of ``m-a-p/MERT-v1-95M``
            (see :func:`engine.models.checkpoint.locate`).
        device: where to put it.
        dtype: weight dtype (float32 on CPU; bfloat16/float16 on GPU).

    Raises:
        ModelLoadError: missing/unreadable config or weights, or weights that do not fit.
    """
    folder = Path(folder)
    cfg_file = folder / "config.json"
    try:
        raw = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{cfg_file}: cannot read MERT config ({exc})") from exc
    config = hubert_config(raw, source=str(cfg_file))
    files = state_files(folder, stem="model") or state_files(folder, stem="pytorch_model")
    if not files:
        raise ModelLoadError(
            f"{folder}: no weights (model.safetensors or pytorch_model.bin) next to config.json"
        )
    model = HubertModel(config)
    load_weights(model, read_state_dict(files), source=str(folder))
    model.eval().to(device=device, dtype=dtype)
    log.info(
        "MERT loaded from %s (%d layers, %d dims)",
        folder,
        config.num_hidden_layers,
        config.hidden_size,
    )
    return Mert(model=model, sr=config.sample_rate, name=str(folder))


def tiny_config() -> dict[str, Any]:
    """A MERT-shaped ``config.json`` dict small enough for tests (2 blocks, 32 dims, 24 kHz).

    Conv strides multiply to 320 like MERT's, so frames still come at 75 Hz.
    """
    return {
        "model_type": "mert_model",
        "architectures": ["MERTModel"],
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "conv_dim": [16, 16, 16],
        "conv_stride": [5, 8, 8],
        "conv_kernel": [10, 8, 8],
        "conv_bias": False,
        "feat_extract_norm": "group",
        "feat_proj_layer_norm": True,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4,
        "do_stable_layer_norm": False,
        "sample_rate": 24000,
        "feature_extractor_cqt": False,
        "deepnorm": False,
        "attention_relax": -1.0,
    }


def tiny(*, seed: int = 0) -> Mert:
    """A tiny MERT with random weights (no files) for tests and the ``sonicverse-tiny`` preset."""
    config = hubert_config(tiny_config(), source="tiny")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HubertModel(config)
    return Mert(model=model.eval(), sr=config.sample_rate, name="tiny")
