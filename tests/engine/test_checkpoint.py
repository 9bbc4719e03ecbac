"""Import of the SonicVerse release onto our projector, weight-file reading, and locating."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from engine.errors import ModelLoadError
from engine.labels import KEYS
from engine.models import checkpoint, heads
from engine.models.checkpoint import (
    SONICVERSE_TASKS,
    import_sonicverse_heads,
    locate,
    read_state_dict,
    strip_sonicverse_prefix,
)

PREFIX = checkpoint.RELEASE_PREFIX
CLASSES = checkpoint.RELEASE_CLASSES
sonicverse_state = checkpoint.random_release_state


def _mlp(sd: dict[str, torch.Tensor], name: str, v: torch.Tensor) -> torch.Tensor:
    """SonicVerse's width-W ``Sequential(GELU, Linear, GELU, Linear)`` stack on ``v: [in]``."""
    rows = []
    i = 0
    while f"{name}.layers.{i}.1.weight" in sd:
        h = F.linear(F.gelu(v), sd[f"{name}.layers.{i}.1.weight"], sd[f"{name}.layers.{i}.1.bias"])
        rows.append(
            F.linear(F.gelu(h), sd[f"{name}.layers.{i}.3.weight"], sd[f"{name}.layers.{i}.3.bias"])
        )
        i += 1
    return torch.stack(rows)


def sonicverse_reference(
    raw: dict[str, torch.Tensor], hidden: torch.Tensor, *, pad_frames: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """SonicVerse's MultiTaskSharedModel forward on one clip, written out op by op.

    ``hidden: [L, T, D]`` is padded (or cropped) to ``pad_frames`` frames as its MERT module
    does; task heads sum the backbone over time, then average layers after a softmax over a
    size-1 axis; the LLM projector averages time, then softmax-weights layers.
    """
    sd = {strip_sonicverse_prefix(k): v for k, v in raw.items()}
    x = F.pad(hidden, (0, 0, 0, pad_frames - hidden.shape[1]))
    y = F.relu(
        F.linear(x, sd["backbone.hidden_layer_1.weight"], sd["backbone.hidden_layer_1.bias"])
    )
    agg = torch.softmax(sd["lmm_projector.aggregator"], dim=0)
    content = (x.mean(dim=-2) * agg[:, None]).sum(dim=0)
    tokens = [_mlp(sd, "lmm_projector", content)]
    logits = {}
    for task in CLASSES:
        w = torch.softmax(sd[f"{task}.aggregator"], dim=1)
        h = (y * w).sum(dim=1).mean(dim=-2)
        h = F.relu(
            F.linear(h, sd[f"{task}.hidden_layer_1.weight"], sd[f"{task}.hidden_layer_1.bias"])
        )
        logit = F.linear(h, sd[f"{task}.output.weight"], sd[f"{task}.output.bias"])
        logits[SONICVERSE_TASKS[task]] = logit
        tokens.append(_mlp(sd, f"{task}_projector", logit))
    return logits, torch.cat(tokens, dim=0)


def _ours(raw: dict[str, torch.Tensor], hidden: torch.Tensor, *, pad_frames: int, **kw):
    config, state = import_sonicverse_heads(raw, pad_frames=pad_frames, **kw)
    p = heads.build(config).eval()
    p.load_state_dict(state, strict=True)
    with torch.no_grad():
        return config, p(p.pool(hidden[None]))


@pytest.mark.parametrize("frames", [7, 20])
def test_import_reproduces_sonicverse_forward(frames: int) -> None:
    raw = sonicverse_state()
    hidden = torch.randn(3, frames, 12, generator=torch.Generator().manual_seed(1))
    ref_logits, ref_tokens = sonicverse_reference(raw, hidden, pad_frames=20)
    config, out = _ours(raw, hidden, pad_frames=20)
    assert config.num_tokens == 5 + 5 * 2
    assert [t.name for t in config.tasks] == ["instruments", "moods", "genres", "key", "vocals"]
    for task, ref in ref_logits.items():
        torch.testing.assert_close(out.logits[task][0], ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.tokens[0], ref_tokens, rtol=1e-4, atol=1e-4)


def test_import_infers_dimensions_from_shapes() -> None:
    config, _ = import_sonicverse_heads(sonicverse_state(layers=4, dim=9, llm_dim=11), pad_frames=5)
    assert (config.layers, config.input_dim, config.llm_dim) == (4, 9, 11)
    assert (config.backbone_dim, config.head_hidden_dim, config.projector_hidden_dim) == (10, 8, 6)
    assert (config.content_tokens, config.task_tokens, config.pad_frames) == (5, 2, 5)
    assert {t.name: t.classes for t in config.tasks} == {
        "instruments": 40,
        "moods": 56,
        "genres": 87,
        "key": 24,
        "vocals": 3,
    }


def test_heads_only_import_skips_projectors_and_matches_logits() -> None:
    raw = sonicverse_state()
    hidden = torch.randn(3, 9, 12, generator=torch.Generator().manual_seed(2))
    ref_logits, _ = sonicverse_reference(raw, hidden, pad_frames=20)
    config, out = _ours(raw, hidden, pad_frames=20, with_tokens=False)
    assert config.llm_dim is None and out.tokens is None
    torch.testing.assert_close(out.logits["genres"][0], ref_logits["genres"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("prefix", ["", "model.audio_mert_lmm_projector.", PREFIX])
def test_prefixes_are_stripped(prefix: str) -> None:
    config, state = import_sonicverse_heads(sonicverse_state(prefix=prefix), pad_frames=4)
    assert "backbone.weight" in state and config.layers == 3


def test_unexpected_and_missing_names_are_refused() -> None:
    raw = sonicverse_state()
    raw[PREFIX + "chords_detection.output.weight"] = torch.zeros(3, 3)
    with pytest.raises(ModelLoadError, match="unexpected"):
        import_sonicverse_heads(raw, pad_frames=4)
    raw = sonicverse_state()
    del raw[PREFIX + "key_detection.output.bias"]
    with pytest.raises(ModelLoadError, match="key_detection.output.bias"):
        import_sonicverse_heads(raw, pad_frames=4)
    raw = sonicverse_state()
    raw["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = torch.zeros(2, 2)
    with pytest.raises(ModelLoadError, match="q_proj"):
        import_sonicverse_heads(raw, pad_frames=4)


def test_key_labels_permute_head_and_projector_consistently() -> None:
    raw = sonicverse_state()
    hidden = torch.randn(3, 9, 12, generator=torch.Generator().manual_seed(3))
    theirs = list(reversed(KEYS))  # checkpoint class i is KEYS[23 - i]
    _, plain = _ours(raw, hidden, pad_frames=20)
    _, mapped = _ours(raw, hidden, pad_frames=20, key_labels=theirs)
    # our class j must hold the checkpoint's class for KEYS[j], i.e. its index 23 - j
    torch.testing.assert_close(mapped.logits["key"][0], plain.logits["key"][0].flip(0))
    # the tokens read the same evidence, so they do not change
    torch.testing.assert_close(mapped.tokens, plain.tokens, rtol=1e-5, atol=1e-5)
    with pytest.raises(ModelLoadError, match="exactly once"):
        import_sonicverse_heads(raw, pad_frames=4, key_labels=["C major"] * 24)


def test_read_state_dict_safetensors_and_weights_only_pickle(tmp_path) -> None:
    from safetensors.torch import save_file

    sd = {"a": torch.arange(4.0), "b": torch.ones(2, 2)}
    save_file(sd, str(tmp_path / "x.safetensors"))
    torch.save(sd, tmp_path / "x.bin")
    for name in ("x.safetensors", "x.bin"):
        got = read_state_dict([tmp_path / name])
        torch.testing.assert_close(got["a"], sd["a"])
    torch.save({"a": torch.zeros(1), "evil": object()}, tmp_path / "bad.bin")
    with pytest.raises(ModelLoadError, match=r"bad\.bin"):
        read_state_dict([tmp_path / "bad.bin"])
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ModelLoadError, match="unreadable"):
        read_state_dict([tmp_path / "junk.safetensors"])


def test_locate_explicit_folder_env_folder_and_hf_cache(tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv(checkpoint.WEIGHTS_ENV, raising=False)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert locate("m-a-p/MERT-v1-95M", path=str(folder)) == folder

    env = tmp_path / "weights" / "MERT-v1-95M"
    env.mkdir(parents=True)
    (env / "config.json").write_text("{}")
    monkeypatch.setenv(checkpoint.WEIGHTS_ENV, str(tmp_path / "weights"))
    assert locate("m-a-p/MERT-v1-95M") == env
    monkeypatch.delenv(checkpoint.WEIGHTS_ENV)

    repo = tmp_path / "hub" / "models--m-a-p--MERT-v1-95M"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({"hidden_size": 768}))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    assert locate("m-a-p/MERT-v1-95M") == snap
    with pytest.raises(ModelLoadError) as err:
        locate("m-a-p/MERT-v1-95M", any_of=("pytorch_model*.bin",), what="MERT encoder")
    assert "incomplete snapshot" in str(err.value)


def test_missing_weights_error_names_folders_and_download_command(tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv(checkpoint.WEIGHTS_ENV, str(tmp_path / "w"))
    with pytest.raises(ModelLoadError) as err:
        locate(
            "amaai-lab/SonicVerse", any_of=("non_lora_trainables.*",), what="SonicVerse checkpoint"
        )
    msg = str(err.value)
    assert str(tmp_path / "w" / "SonicVerse") in msg
    assert str(tmp_path / "hub") in msg
    assert "hf download amaai-lab/SonicVerse --local-dir" in msg
    assert "huggingface-cli download amaai-lab/SonicVerse" in msg
    with pytest.raises(ModelLoadError, match=str(tmp_path / "nowhere")):
        locate("amaai-lab/SonicVerse", path=str(tmp_path / "nowhere"))
