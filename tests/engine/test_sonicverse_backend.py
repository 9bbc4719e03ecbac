"""The sonicverse backend end to end with tiny models, and the LLM captioning path."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
import torch

from engine import backends, presets
from engine.audio import Audio
from engine.backends.base import Segment
from engine.errors import ModelLoadError, PresetError
from engine.labels import KEYS, VOCALS
from engine.models import checkpoint, llm, mert
from engine.types import Region, RegionAnnotation, TrackNarrative
from tests.engine.test_checkpoint import sonicverse_state

SR = 22050


def tone(freq: float, seconds: float, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(2 * np.pi * freq * 1.5 * t)
    return (y + 0.01 * rng.standard_normal(t.size)).astype(np.float32)[None]


def segment(start_s: float, samples: np.ndarray) -> Segment:
    end_s = start_s + samples.shape[-1] / SR
    return Segment(Region(start_s, end_s), Audio(samples, SR, "song.wav", start_s))


def track() -> list[Segment]:
    return [
        segment(0.0, tone(220, 10.0)),
        segment(10.0, np.zeros((2, 10 * SR), np.float32)),  # silence, stereo
        segment(20.0, tone(330, 13.0, seed=1)),  # longer than one window
    ]


def preset_with(name: str, **sonicverse) -> presets.Preset:
    """A shipped preset with some ``[sonicverse]`` sub-tables replaced."""
    table = tomllib.loads(presets.available()[name].read_text(encoding="utf-8"))
    for key, value in sonicverse.items():
        if isinstance(value, dict):
            table["sonicverse"].setdefault(key, {}).update(value)
        else:
            table["sonicverse"][key] = value
    return presets.from_table(table)


@pytest.fixture(scope="module")
def tiny_backend():
    b = backends.create(presets.load("sonicverse-tiny"), device="cpu")
    yield b
    b.close()


def test_presets_parse_into_options() -> None:
    for name in ("sonicverse-7b-nf4", "sonicverse-cpu", "sonicverse-tiny"):
        p = presets.load(name)
        assert p.backend == "sonicverse" and p.description and p.name == name
    gpu, cpu = presets.load("sonicverse-7b-nf4").options, presets.load("sonicverse-cpu").options
    assert gpu.llm.enabled and gpu.llm.quantization == "nf4" and gpu.mert.repo_id.endswith("95M")
    assert not cpu.llm.enabled and cpu.checkpoint.pad_frames == 760
    with pytest.raises(PresetError, match="quantisation|quantization"):
        preset_with("sonicverse-tiny", llm={"quantization": "int3"})
    with pytest.raises(PresetError, match="unknown key"):
        preset_with("sonicverse-tiny", llm={"temperature": 0.1})
    with pytest.raises(PresetError, match="tag_threshold"):
        preset_with("sonicverse-tiny", tag_threshold=1.5)
    with pytest.raises(PresetError, match="24"):
        preset_with("sonicverse-tiny", checkpoint={"key_labels": ["C major"]})


def test_analyze_and_narrate_with_tiny_models(tiny_backend) -> None:
    seen: list[tuple[str, int, int]] = []
    anns = tiny_backend.analyze(track(), progress=lambda s, d, n: seen.append((s, d, n)))
    assert [type(a) for a in anns] == [RegionAnnotation] * 3
    assert [a.start_s for a in anns] == [0.0, 10.0, 20.0]
    loud, silent, long = anns
    assert silent.silent and silent.key is None and silent.vocals is None
    assert silent.instruments == () and silent.caption == "Silence."
    for a in (loud, long):
        assert not a.silent and a.backend == "sonicverse"
        assert a.key is not None and a.key.key in KEYS and len(a.key.candidates) == 2
        assert a.vocals is not None and a.vocals.label in VOCALS
        assert math.isclose(sum(a.vocals.probabilities), 1.0, rel_tol=1e-5)
        assert isinstance(a.caption, str) and a.caption
        assert a.loudness_lufs is not None and a.peak_dbfs < 0
        assert all(0.3 <= t.score <= 1 for t in a.instruments + a.moods + a.genres)
        RegionAnnotation.from_dict(a.to_dict())
    assert ("mert", 3, 3) in seen and ("caption", 1, 1) in seen  # 1 + 0 + 2 windows
    n = tiny_backend.narrate(anns, source="/x/song.wav", duration_s=33.0)
    assert isinstance(n, TrackNarrative) and n.backend == "sonicverse" and n.sections
    assert n.text  # the LLM's text (noise for the tiny model), not empty


def test_batching_does_not_change_results(tiny_backend) -> None:
    segs = track()
    together = tiny_backend.analyze(segs)
    alone = [tiny_backend.analyze([s])[0] for s in segs]
    for a, b in zip(together, alone, strict=True):
        assert (a.key and a.key.key) == (b.key and b.key.key)
        assert a.vocals == b.vocals or np.allclose(a.vocals.probabilities, b.vocals.probabilities)
        assert a.caption == b.caption


def test_fingerprint_tracks_options_and_weights(tiny_backend) -> None:
    same = backends.create(presets.load("sonicverse-tiny"), device="cpu")
    assert same.fingerprint == tiny_backend.fingerprint
    other_opts = backends.create(preset_with("sonicverse-tiny", tag_threshold=0.5), device="cpu")
    other_seed = backends.create(preset_with("sonicverse-tiny", seed=1), device="cpu")
    prints = {tiny_backend.fingerprint, other_opts.fingerprint, other_seed.fingerprint}
    assert len(prints) == 3 and all(p.startswith("sonicverse:") for p in prints)


def test_without_llm_captions_are_templates(tiny_backend) -> None:
    from engine.captions import template_caption

    b = backends.create(preset_with("sonicverse-tiny", llm={"enabled": False}), device="cpu")
    assert b.lm is None and b.projector.config.llm_dim is None
    anns = b.analyze(track()[:1])
    assert anns[0].caption == template_caption(anns[0])
    n = b.narrate(anns, source="song.wav", duration_s=10.0)
    assert n.text.startswith("0:00-0:10")


def test_nf4_without_cuda_is_refused_before_loading(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match="sonicverse-cpu") as err:
        backends.create(presets.load("sonicverse-7b-nf4"))
    assert "CUDA" in str(err.value)
    with pytest.raises(ModelLoadError, match="CUDA"):
        llm.from_pretrained("/nonexistent", quantization="nf4", device="cpu")


def test_missing_weights_name_the_download(tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv(checkpoint.WEIGHTS_ENV, str(tmp_path / "weights"))
    with pytest.raises(ModelLoadError) as err:
        backends.create(presets.load("sonicverse-cpu"), device="cpu")
    msg = str(err.value)
    assert "m-a-p/MERT-v1-95M" in msg and str(tmp_path / "weights" / "MERT-v1-95M") in msg
    assert "hf download m-a-p/MERT-v1-95M --local-dir" in msg


# --- real loading code on tiny files ------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Folders laid out like the real downloads, holding tiny models."""
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("weights")
    m = mert.tiny(seed=3)
    m.model.save_pretrained(root / "mert")
    lm = llm.tiny(seed=4)
    lm.model.save_pretrained(root / "llm")
    lm.tokenizer.save_pretrained(root / "llm")
    ckpt = root / "sonicverse"
    ckpt.mkdir()
    state = sonicverse_state(layers=m.layers, dim=m.dim, llm_dim=lm.hidden_size, seed=5)
    torch.save(state, ckpt / "non_lora_trainables.bin")
    lora = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    get_peft_model(llm.tiny(seed=4).model, lora).save_pretrained(ckpt)
    return root


def test_pretrained_path_from_local_folders(weights) -> None:
    from peft import PeftModel

    p = preset_with(
        "sonicverse-7b-nf4",
        mert={"path": str(weights / "mert")},
        checkpoint={"path": str(weights / "sonicverse")},
        llm={
            "path": str(weights / "llm"),
            "quantization": "none",
            "dtype": "float32",
            "max_new_tokens": 6,
            "narrative_max_new_tokens": 6,
        },
    )
    b = backends.create(p, device="cpu")
    assert isinstance(b.lm.model, PeftModel)
    assert b.projector.config.num_tokens == 5 + 5 * 2 and b.projector.config.pad_frames == 760
    anns = b.analyze(track())
    assert anns[0].key.key in KEYS and anns[2].vocals is not None
    assert b.narrate(anns, source="song.wav", duration_s=33.0).backend == "sonicverse"
    heads_only = backends.create(
        preset_with(
            "sonicverse-cpu",
            mert={"path": str(weights / "mert")},
            checkpoint={"path": str(weights / "sonicverse")},
        ),
        device="cpu",
    )
    assert heads_only.lm is None and heads_only.fingerprint != b.fingerprint
    # the same checkpoint heads give the same labels with or without the LLM
    assert heads_only.analyze(track())[2].key == anns[2].key


def test_adapter_takes_the_compute_dtype(weights) -> None:
    lm = llm.from_pretrained(
        weights / "llm",
        adapter=weights / "sonicverse",
        quantization="none",
        device="cpu",
        dtype=torch.bfloat16,
    )
    lora = {p.dtype for n, p in lm.model.named_parameters() if "lora_" in n}
    assert lora == {torch.bfloat16}
    tokens = torch.randn(2, 15, lm.hidden_size)
    assert len(lm.caption(tokens, ["Describe the music. <sound>"] * 2, max_new_tokens=3)) == 2


def test_adapter_changes_captions_and_is_off_for_chat(weights) -> None:
    with_lora = llm.from_pretrained(
        weights / "llm",
        adapter=weights / "sonicverse",
        quantization="none",
        device="cpu",
        dtype=torch.float32,
    )
    plain = llm.from_pretrained(
        weights / "llm", quantization="none", device="cpu", dtype=torch.float32
    )
    tokens = torch.randn(1, 15, plain.hidden_size, generator=torch.Generator().manual_seed(0))
    embeds, mask = plain.splice(tokens, ["Describe the music. <sound>"])
    with torch.no_grad():
        a = plain.model(inputs_embeds=embeds, attention_mask=mask).logits[0, -1]
        b = with_lora.model(inputs_embeds=embeds, attention_mask=mask).logits[0, -1]
    assert not torch.allclose(a, b)
    msgs = [{"role": "user", "content": "Write one narrative"}]
    assert with_lora.chat(msgs, max_new_tokens=6) == plain.chat(msgs, max_new_tokens=6)


def test_splice_puts_audio_tokens_at_the_marker() -> None:
    lm = llm.tiny(seed=6)
    before, after = lm.prompt_parts("Describe the music. <sound>")
    assert before[0] == lm.tokenizer.bos_token_id
    tokens = torch.randn(2, 5, lm.hidden_size)
    embeds, mask = lm.splice(tokens, ["Describe the music. <sound>", "Describe <sound>"])
    n0 = len(before) + 5 + len(after)
    assert embeds.shape[1] == n0 and mask[0].all() and mask[1, : n0 - embeds.shape[1]].sum() == 0
    torch.testing.assert_close(embeds[0, len(before) : len(before) + 5], tokens[0])
    short_before, _ = lm.prompt_parts("Describe <sound>")
    pad = n0 - mask[1].sum().item()
    assert pad > 0 and mask[1, :pad].sum() == 0  # left padding
    start = pad + len(short_before)
    torch.testing.assert_close(embeds[1, start : start + 5], tokens[1])
    with pytest.raises(ValueError, match="<sound>"):
        lm.prompt_parts("Describe the music.")


def test_batched_generate_equals_one_by_one_and_greedy_forward() -> None:
    lm = llm.tiny(seed=7)
    tokens = torch.randn(3, 5, lm.hidden_size, generator=torch.Generator().manual_seed(1))
    prompts = [
        "Describe the music. <sound>",
        "Describe <sound>",
        "A long prompt, keep facts <sound>",
    ]
    batch = lm.caption(tokens, prompts, max_new_tokens=6)
    single = [lm.caption(tokens[i : i + 1], [prompts[i]], max_new_tokens=6)[0] for i in range(3)]
    assert batch == single
    embeds, mask = lm.splice(tokens[:1], prompts[:1])
    with torch.no_grad():
        first = lm.model(inputs_embeds=embeds, attention_mask=mask).logits[0, -1].argmax()
        out = lm.model.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=1,
            do_sample=False,
            pad_token_id=lm.tokenizer.pad_token_id,
        )
    assert out[0, -1] == first
    assert lm.caption(tokens[:0], []) == []


@pytest.mark.gpu
def test_nf4_on_cuda(weights) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    lm = llm.from_pretrained(weights / "llm", adapter=weights / "sonicverse", quantization="nf4")
    assert lm.device.type == "cuda"
    assert any("4bit" in type(m).__name__ for m in lm.base.modules())
    tokens = torch.randn(18, 15, lm.hidden_size)
    caps = lm.caption(tokens, ["Describe the music. <sound>"] * 18, max_new_tokens=8)
    assert len(caps) == 18 and all(isinstance(c, str) for c in caps)


@pytest.mark.gpu
def test_backend_on_cuda_with_tiny_files(weights) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    p = preset_with(
        "sonicverse-7b-nf4",
        mert={"path": str(weights / "mert")},
        checkpoint={"path": str(weights / "sonicverse")},
        llm={"path": str(weights / "llm"), "max_new_tokens": 6, "narrative_max_new_tokens": 6},
    )
    b = backends.create(p)
    assert b.device.type == "cuda"
    anns = b.analyze(track())
    assert anns[0].key is not None and anns[1].silent
