"""MERT as a HubertModel: config mapping, strict loading (old weight-norm names), outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import HubertModel

from engine.errors import ModelLoadError
from engine.models import mert


@pytest.fixture(scope="module")
def reference() -> HubertModel:
    config = mert.hubert_config(mert.tiny_config())
    torch.manual_seed(0)
    return HubertModel(config).eval()


def _clip(seconds: float, *, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 24000)) / 24000
    y = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size) + 0.1
    return torch.from_numpy(y.astype(np.float32))


def test_config_maps_mert_json_onto_hubert() -> None:
    raw = {**mert.tiny_config(), "auto_map": {"AutoModel": "modeling_MERT.MERTModel"}}
    config = mert.hubert_config(raw)
    assert config.model_type == "hubert"
    assert (config.hidden_size, config.num_hidden_layers) == (32, 2)
    assert config.feat_extract_norm == "group" and config.sample_rate == 24000
    assert "auto_map" not in config.to_dict()  # no remote code is referenced


def test_mert_only_switches_are_refused() -> None:
    with pytest.raises(ModelLoadError, match="feature_extractor_cqt"):
        mert.hubert_config({**mert.tiny_config(), "feature_extractor_cqt": True})
    with pytest.raises(ModelLoadError, match="deepnorm"):
        mert.hubert_config({**mert.tiny_config(), "deepnorm": True})


def test_normalize_matches_the_feature_extractor() -> None:
    from transformers import Wav2Vec2FeatureExtractor

    fe = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=24000, padding_value=0.0, do_normalize=True
    )
    y = _clip(1.0)
    ref = fe(y.numpy(), sampling_rate=24000, return_tensors="pt")["input_values"]
    torch.testing.assert_close(mert.normalize(y[None]), ref, rtol=1e-5, atol=1e-5)
    z = mert.normalize(torch.stack([y, 3 * y + 1]))
    torch.testing.assert_close(z[0], z[1], rtol=1e-4, atol=1e-4)  # per clip: gain/offset gone


def test_hidden_states_shape_and_frame_rate() -> None:
    m = mert.tiny()
    assert m.sr == 24000 and m.hop == 320 and m.layers == 3
    h = m.hidden_states(torch.stack([_clip(2.0), _clip(2.0, seed=1)]))
    assert h.shape == (2, 3, m.frames(48000), 32)
    assert m.frames(240000) == 749  # 10 s at 75 frames/s, as MERT-v1
    assert torch.isfinite(h).all()


def test_save_pretrained_round_trip(tmp_path, reference) -> None:
    reference.save_pretrained(tmp_path)
    loaded = mert.from_pretrained(tmp_path)
    x = _clip(1.0)[None]
    with torch.no_grad():
        want = torch.stack(
            reference(mert.normalize(x), output_hidden_states=True).hidden_states, dim=1
        )
    torch.testing.assert_close(loaded.hidden_states(x), want)


def _mert_folder(tmp_path, reference, state):
    """A folder as m-a-p/MERT-v1-95M ships it: MERT config.json + pytorch_model.bin."""
    raw = {**mert.tiny_config(), "auto_map": {"AutoModel": "modeling_MERT.MERTModel"}}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    torch.save(state, tmp_path / "pytorch_model.bin")
    return tmp_path


def test_old_weight_norm_names_load_strictly(tmp_path, reference) -> None:
    old = {}
    for k, v in reference.state_dict().items():
        k = k.replace("parametrizations.weight.original0", "weight_g")
        k = k.replace("parametrizations.weight.original1", "weight_v")
        old[k] = v.clone()
    assert "encoder.pos_conv_embed.conv.weight_g" in old
    assert "encoder.pos_conv_embed.conv.weight_v" in old
    loaded = mert.from_pretrained(_mert_folder(tmp_path, reference, old))
    x = _clip(1.0, seed=2)[None]
    with torch.no_grad():
        want = reference(mert.normalize(x), output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(loaded.hidden_states(x)[:, -1], want)
    g = loaded.model.encoder.pos_conv_embed.conv.parametrizations.weight.original0
    torch.testing.assert_close(g, old["encoder.pos_conv_embed.conv.weight_g"])


def test_missing_and_mismatched_weights_are_refused(tmp_path, reference) -> None:
    state = dict(reference.state_dict())
    state.pop("encoder.layer_norm.weight")
    with pytest.raises(ModelLoadError, match=r"missing \['encoder.layer_norm.weight'\]"):
        mert.from_pretrained(_mert_folder(tmp_path, reference, state))
    state = dict(reference.state_dict())
    state["encoder.layer_norm.weight"] = torch.ones(5)
    with pytest.raises(ModelLoadError, match="shape"):
        mert.from_pretrained(_mert_folder(tmp_path, reference, state))
    state = {**reference.state_dict(), "cqt.kernel": torch.ones(1)}
    with pytest.raises(ModelLoadError, match="unexpected"):
        mert.from_pretrained(_mert_folder(tmp_path, reference, state))


def test_training_only_mask_embedding_may_be_absent(tmp_path, reference) -> None:
    state = {k: v for k, v in reference.state_dict().items() if k != "masked_spec_embed"}
    mert.from_pretrained(_mert_folder(tmp_path, reference, state))


def test_folder_without_weights_or_config(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="config"):
        mert.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(mert.tiny_config()))
    with pytest.raises(ModelLoadError, match="no weights"):
        mert.from_pretrained(tmp_path)


def test_hf_offline_cache_layout(tmp_path, reference, monkeypatch) -> None:
    from huggingface_hub import constants

    from engine.models.checkpoint import locate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--m-a-p--MERT-v1-95M"
    snap = repo / "snapshots" / ("b" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("b" * 40)
    _mert_folder(snap, reference, reference.state_dict())
    folder = locate("m-a-p/MERT-v1-95M", any_of=("pytorch_model*.bin",))
    assert folder == snap
    assert mert.from_pretrained(folder).layers == 3
