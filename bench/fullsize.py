"""The `sonicverse` models with random weights, written in the layouts the presets load.

Run: ``python bench/fullsize.py OUT [--size 7b|small] [--device cuda|cpu]``.

Writes ``OUT/MERT-v1-95M`` (config.json + model.safetensors), ``OUT/SonicVerse``
(``non_lora_trainables.bin`` under the release's names + a PEFT LoRA adapter) and
``OUT/Mistral-7B-Instruct-v0.1`` (config.json, bf16 safetensors shards, a byte-level BPE
tokenizer of Mistral's vocabulary size with Mistral-Instruct's chat template). With
``SONICVERSE_WEIGHTS=OUT`` the ``sonicverse-7b-nf4`` preset, ``bench/neural.py`` and
``bench/train.py`` load them through the same code as the real downloads; random weights cost
the same time and memory as trained ones. ``--size 7b`` uses the real configs below
(MERT-v1-95M, Mistral-7B-Instruct-v0.1, the release's projector sizes); ``--size small`` the
same layouts at a size a CPU writes and loads in seconds, to check the path end to end.
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

log = logging.getLogger("bench.fullsize")

MERT_V1_95M: dict[str, Any] = {
    # m-a-p/MERT-v1-95M config.json (the fields HubertConfig reads)
    "model_type": "mert_model",
    "architectures": ["MERTModel"],
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "conv_dim": [512, 512, 512, 512, 512, 512, 512],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_bias": False,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "feat_proj_layer_norm": True,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "do_stable_layer_norm": False,
    "layer_norm_eps": 1e-5,
    "sample_rate": 24000,
    "feature_extractor_cqt": False,
    "deepnorm": False,
    "attention_relax": -1.0,
}

MISTRAL_7B_INSTRUCT_V01: dict[str, Any] = {
    # mistralai/Mistral-7B-Instruct-v0.1 config.json
    "architectures": ["MistralForCausalLM"],
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 32768,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "sliding_window": 4096,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

RELEASE_PROJECTOR: dict[str, int] = {
    # the SonicVerse release's non_lora_trainables shapes (llm_dim comes from the LLM)
    "backbone": 512,
    "head_hidden": 256,
    "proj_hidden": 4096,
    "content_tokens": 40,
    "task_tokens": 4,
}

LORA: dict[str, Any] = {
    # The release's adapter config is not published with its code; a rank-64 adapter on every
    # projection of every block is at the large end of LLaVA-style captioners, so the timing
    # is not flattered.
    "r": 64,
    "lora_alpha": 16,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}

SMALL: dict[str, dict[str, Any]] = {
    "mert": {
        **MERT_V1_95M,
        "hidden_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 192,
        "conv_dim": [64, 64, 64],
        "conv_stride": [5, 8, 8],
        "conv_kernel": [10, 8, 8],
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4,
    },
    "llm": {
        **MISTRAL_7B_INSTRUCT_V01,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "projector": {
        "backbone": 64,
        "head_hidden": 32,
        "proj_hidden": 64,
        "content_tokens": 8,
        "task_tokens": 2,
    },
}

FOLDERS = {
    "mert": "MERT-v1-95M",
    "checkpoint": "SonicVerse",
    "llm": "Mistral-7B-Instruct-v0.1",
}
"""Sub-folder names :func:`engine.models.checkpoint.locate` finds under ``$SONICVERSE_WEIGHTS``."""

MISTRAL_CHAT_TEMPLATE = (
    # Mistral-7B-Instruct-v0.1's template: alternating user/assistant turns in [INST] blocks
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% endif %}{% endfor %}"
)


def configs(size: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """MERT config.json, LLM config.json and projector sizes for ``size``."""
    if size == "7b":
        return MERT_V1_95M, MISTRAL_7B_INSTRUCT_V01, RELEASE_PROJECTOR
    return SMALL["mert"], SMALL["llm"], SMALL["projector"]


def complete(root: Path) -> bool:
    """Whether ``root`` holds all three folders, each finished (a marker is written last)."""
    return all((root / f / ".complete").is_file() for f in FOLDERS.values())


def write_mert(folder: Path, raw: dict[str, Any], *, seed: int) -> None:
    """MERT's config.json (MERT's own fields) and a model.safetensors of a random HuBERT."""
    import torch
    from safetensors.torch import save_file
    from transformers import HubertModel

    from engine.models.mert import hubert_config

    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HubertModel(hubert_config(raw))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")


def bpe_tokenizer(vocab_size: int, *, seed: int) -> Any:
    """A byte-level BPE of ``vocab_size`` tokens with Mistral-Instruct's specials and template.

    Trained here on prompt-like text and generated words, so every id decodes to text and
    prompts tokenize to about as many tokens as Mistral's own tokenizer makes of them.
    """
    import numpy as np
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = np.random.default_rng(seed)
    onsets = [*"bcdfghjklmnprstvwz", "br", "ch", "cl", "dr", "gr", "pl", "sh", "st", "th", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "ie", "y"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck"]
    sylls = [o + v + c for o in onsets for v in vowels for c in codas]
    counts = rng.integers(1, 4, size=40 * vocab_size)
    picks = iter(rng.integers(0, len(sylls), size=int(counts.sum())).tolist())
    words = ["".join(sylls[next(picks)] for _ in range(int(c))) for c in counts]
    prose = (
        "[INST] Describe the music. [/INST] A calm piano piece in C major at 92 BPM with soft "
        "strings, female vocals and a warm bass. 0:00-0:10 0:10-0:20 the key moves to A minor."
    )
    corpus = [" ".join(words[i : i + 64]) for i in range(0, len(words), 64)] + [prose] * 200
    specials = ["<unk>", "<s>", "</s>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.chat_template = MISTRAL_CHAT_TEMPLATE
    return fast


def write_llm(folder: Path, raw: dict[str, Any], *, device: str, seed: int) -> Any:
    """The LLM's config, bf16 safetensors shards and tokenizer; returns the model (on
    ``device``) for the adapter to be made on."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = bpe_tokenizer(int(raw["vocab_size"]), seed=seed)
    tokenizer.save_pretrained(str(folder))
    config = MistralConfig(**{k: v for k, v in raw.items() if k != "architectures"})
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MistralForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(str(folder), max_shard_size="5GB", safe_serialization=True)
    return model


def write_checkpoint(
    folder: Path,
    model: Any,
    *,
    mert: dict[str, Any],
    llm_dim: int,
    sizes: dict[str, int],
    seed: int,
) -> None:
    """``non_lora_trainables.bin`` (bf16, the release's names) and a LoRA adapter on ``model``."""
    import torch
    from peft import LoraConfig, get_peft_model

    from engine.models.checkpoint import random_release_state

    folder.mkdir(parents=True, exist_ok=True)
    state = random_release_state(
        layers=int(mert["num_hidden_layers"]) + 1,
        dim=int(mert["hidden_size"]),
        llm_dim=llm_dim,
        seed=seed,
        std=None,
        dtype=torch.bfloat16,
        **sizes,
    )
    torch.save(state, folder / "non_lora_trainables.bin")
    del state
    lora = LoraConfig(**LORA, init_lora_weights=False, task_type="CAUSAL_LM")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        get_peft_model(model, lora).save_pretrained(str(folder))


def write(root: Path, *, size: str = "7b", device: str = "cpu", seed: int = 0) -> dict[str, float]:
    """Write the three folders under ``root``; returns seconds spent on each."""
    import torch

    mert_raw, llm_raw, sizes = configs(size)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    write_mert(root / FOLDERS["mert"], mert_raw, seed=seed)
    seconds["mert"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = write_llm(root / FOLDERS["llm"], llm_raw, device=device, seed=seed)
    seconds["llm"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_checkpoint(
        root / FOLDERS["checkpoint"],
        model,
        mert=mert_raw,
        llm_dim=int(llm_raw["hidden_size"]),
        sizes=sizes,
        seed=seed,
    )
    seconds["checkpoint"] = time.perf_counter() - t0
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    for f in FOLDERS.values():
        (root / f / ".complete").write_text(size, encoding="utf-8")
    return seconds


def folder_gb(folder: Path) -> float:
    """Bytes of the files under ``folder``, in GB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", choices=("7b", "small"), default="7b")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    seconds = write(args.out, size=args.size, device=args.device)
    for name, folder in FOLDERS.items():
        log.info(
            "%-28s %6.2f GB written in %5.1f s",
            folder,
            folder_gb(args.out / folder),
            seconds[name],
        )


if __name__ == "__main__":
    main()
