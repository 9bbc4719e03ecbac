"""The captioning LLM: a causal LM (Mistral-7B-Instruct in the paper) that reads audio tokens.

Loading: from a local folder only (``local_files_only=True``), in 4-bit NF4 through
bitsandbytes with bf16 compute on CUDA, or unquantised; SonicVerse's LoRA adapter on top
through peft. Captioning: the prompt is written with the tokenizer's chat template, the
projector's audio tokens are spliced into ``inputs_embeds`` where the sound marker stands,
and every clip of a track is captioned in one batched, left-padded, KV-cached ``generate``.
The narrative is plain chat with the same weights, the adapter switched off.

The tiny variant (:func:`tiny`) is a random 2-layer Mistral with a byte-level BPE tokenizer
trained here, for tests and the ``sonicverse-tiny`` preset: no files needed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from engine.errors import ModelLoadError
from engine.prompts import SOUND_MARKER

log = logging.getLogger(__name__)

Quantization = Literal["nf4", "none"]

TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]"
    "{% else %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
"""Mistral-Instruct's template, minus its role checks, for the tiny tokenizer."""


@dataclass
class CaptionLM:
    """A loaded LLM and its tokenizer.

    Attributes:
        model: a ``transformers`` causal LM, or a ``peft.PeftModel`` around one.
        tokenizer: its tokenizer (left padding).
        name: where it came from, for logs and fingerprints.
    """

    model: Any
    tokenizer: Any
    name: str

    @property
    def hidden_size(self) -> int:
        """The LM's hidden size: the width of the audio tokens it reads."""
        return int(self.base.config.hidden_size)

    @property
    def base(self) -> Any:
        """The causal LM without any adapter wrapper."""
        m = self.model
        return m.get_base_model() if hasattr(m, "get_base_model") else m

    @property
    def device(self) -> torch.device:
        """Where the input embeddings live."""
        return self.base.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the input embeddings (the audio tokens are cast to it)."""
        return self.base.get_input_embeddings().weight.dtype

    def prompt_parts(self, instruction: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the sound marker of a one-turn chat prompt.

        Args:
            instruction: the user's text, containing :data:`SOUND_MARKER` exactly once.

        Raises:
            ValueError: the marker is missing or repeated.
        """
        if instruction.count(SOUND_MARKER) != 1:
            raise ValueError(
                f"caption instruction must contain {SOUND_MARKER!r} once, got {instruction!r}"
            )
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
        )
        before, after = text.split(SOUND_MARKER)
        enc = self.tokenizer
        return (
            enc(before, add_special_tokens=False).input_ids,
            enc(after, add_special_tokens=False).input_ids,
        )

    def splice(
        self, audio_tokens: torch.Tensor, instructions: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ``inputs_embeds`` and ``attention_mask`` for a batch of clips.

        Args:
            audio_tokens: ``[N, K, H]`` projector output, one row of K tokens per clip.
            instructions: N prompts, each with the sound marker once.

        Returns:
            ``inputs_embeds: [N, S, H]`` and ``attention_mask: [N, S]`` (S = longest prompt).
        """
        if audio_tokens.shape[0] != len(instructions):
            raise ValueError(
                f"{audio_tokens.shape[0]} clips of audio tokens but {len(instructions)} prompts"
            )
        embed = self.base.get_input_embeddings()
        rows = []
        for tokens, instruction in zip(audio_tokens, instructions, strict=True):
            before, after = self.prompt_parts(instruction)
            ids = torch.tensor(before + after, dtype=torch.long, device=self.device)
            e = embed(ids)
            rows.append(torch.cat([e[: len(before)], tokens.to(e.dtype), e[len(before) :]], dim=0))
        length = max(r.shape[0] for r in rows)
        h = rows[0].shape[1]
        pad_id = self.tokenizer.pad_token_id
        pad = embed(torch.tensor([pad_id], device=self.device))[0]
        embeds = pad.expand(len(rows), length, h).clone()
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=self.device)
        for i, r in enumerate(rows):
            embeds[i, length - r.shape[0] :] = r
            mask[i, length - r.shape[0] :] = 1
        return embeds, mask

    @torch.inference_mode()
    def caption(
        self,
        audio_tokens: torch.Tensor,
        instructions: Sequence[str],
        *,
        max_new_tokens: int = 128,
    ) -> list[str]:
        """One caption per clip, all clips in one greedy ``generate``.

        Args:
            audio_tokens: ``[N, K, H]`` from :class:`engine.models.heads.MultiTaskProjector`.
            instructions: N prompts with the sound marker (see :mod:`engine.prompts`).
            max_new_tokens: caption length limit in tokens.
        """
        if audio_tokens.shape[0] == 0:
            return []
        embeds, mask = self.splice(audio_tokens.to(self.device, self.dtype), instructions)
        out = self.model.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            use_cache=True,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        # With inputs_embeds alone, generate returns only the new tokens.
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    @torch.inference_mode()
    def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_new_tokens: int = 512,
        adapter: bool = False,
    ) -> str:
        """Greedy reply to a text-only chat (the narrative), adapter off unless asked.

        Args:
            messages: ``[{"role": "user", "content": ...}]`` as built by :mod:`engine.prompts`.
            max_new_tokens: reply length limit in tokens.
            adapter: keep the captioning LoRA on (off: the base instruct model answers).
        """
        text = self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").to(self.device)
        off = (
            self.model.disable_adapter()
            if not adapter and hasattr(self.model, "disable_adapter")
            else nullcontext()
        )
        with off:
            out = self.model.generate(
                **ids,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                use_cache=True,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = out[0, ids["input_ids"].shape[1] :]
        return self.tokenizer.decode(new, skip_special_tokens=True).strip()


def quantization_config(quantization: Quantization, *, compute_dtype: torch.dtype) -> Any:
    """bitsandbytes settings: NF4 with double quantisation (as SonicVerse's 4-bit load)."""
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def check_quantization(quantization: Quantization, device: torch.device) -> None:
    """The one check that a quantisation can run on ``device``: NF4 needs CUDA.

    Raises:
        ModelLoadError: NF4 without CUDA, naming the device and what to use instead.
    """
    if quantization == "nf4" and (device.type != "cuda" or not torch.cuda.is_available()):
        raise ModelLoadError(
            f"4-bit NF4 quantisation needs a CUDA GPU (bitsandbytes), but device={str(device)!r} "
            f"and CUDA available={torch.cuda.is_available()}. On this machine use the "
            "'sonicverse-cpu' preset (MERT + heads, template captions), or set "
            '[sonicverse.llm] quantization = "none" for an unquantised LM.'
        )


def from_pretrained(
    folder: str | Path,
    *,
    adapter: str | Path | None = None,
    quantization: Quantization = "nf4",
    device: str | torch.device = "cuda",
    dtype: torch.dtype = torch.bfloat16,
) -> CaptionLM:
    """Load a causal LM (and optionally a LoRA adapter) from local folders.

    Args:
        folder: the LM's files (config.json, weights, tokenizer), e.g. the HF snapshot of
            ``mistralai/Mistral-7B-Instruct-v0.1``.
        adapter: a PEFT adapter folder (adapter_config.json + adapter_model.*), or None.
        quantization: ``"nf4"`` (4-bit, CUDA only) or ``"none"``.
        device: where to put it.
        dtype: compute dtype for nf4, weight dtype otherwise.

    Raises:
        ModelLoadError: nf4 without CUDA, or files that cannot be read.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = torch.device(device)
    check_quantization(quantization, dev)
    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype}
    qc = quantization_config(quantization, compute_dtype=dtype)
    if qc is not None:
        kwargs["quantization_config"] = qc
        kwargs["device_map"] = {"": dev.index or 0}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder}: cannot load the LLM ({exc})") from exc
    if qc is None:
        model.to(dev)  # type: ignore[arg-type]
    model.eval()
    if adapter is not None:
        model = with_adapter(model, Path(adapter), dtype=dtype)
    _prepare_tokenizer(tokenizer)
    log.info("LLM loaded from %s (%s, adapter=%s)", folder, quantization, adapter)
    return CaptionLM(model=model, tokenizer=tokenizer, name=str(folder))


def with_adapter(model: Any, adapter: Path, *, dtype: torch.dtype | None = None) -> Any:
    """``model`` with the PEFT LoRA adapter in ``adapter`` applied (inference only).

    Args:
        dtype: the adapter's weights in this dtype (the LM's compute dtype); None keeps what
            peft loads (it upcasts bf16/fp16 adapters to float32). A rank-64 adapter on every
            projection of Mistral-7B holds 0.31 GiB less GPU memory in bf16 than in float32, at
            the same decode speed (bench/decode.py on an H200, docs/gpu.md).
    """
    from peft import PeftModel

    if not (adapter / "adapter_config.json").is_file():
        raise ModelLoadError(f"{adapter}: no adapter_config.json (a PEFT LoRA adapter folder)")
    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{adapter}: cannot load the LoRA adapter ({exc})") from exc
    if dtype is not None:
        for name, param in peft_model.named_parameters():
            if "lora_" in name and param.is_floating_point():
                param.data = param.data.to(dtype)
    return peft_model.eval()


def _prepare_tokenizer(tokenizer: Any) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    tokenizer.padding_side = "left"
    if not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            f"tokenizer {tokenizer.name_or_path!r} has no chat template; captions need an "
            "instruct model's tokenizer"
        )


_TINY_CORPUS = (
    "[INST] Describe the music. [/INST] A calm piano piece in C major with soft strings.",
    "An upbeat pop song with female vocals, electric guitar, bass and drums at 120 BPM.",
    "A dark ambient soundscape in A minor, slow and atmospheric, with synthesizer pads.",
    "Write one narrative of the whole track from its chunk descriptions with timestamps.",
    "0:00-0:10 0:10-0:20 key tempo transition chunk contradicts neighbours drop keep facts",
)


TINY_HIDDEN_SIZE = 64  # hidden size of the tiny test LLM (the width its audio tokens need)


def tiny_tokenizer() -> Any:
    """A byte-level BPE tokenizer (a few hundred tokens) with a chat template, built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TINY_CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def tiny_config(tokenizer: Any, *, hidden_size: int = TINY_HIDDEN_SIZE) -> Any:
    """A 2-layer Mistral config sized for ``tokenizer``."""
    from transformers import MistralConfig

    return MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


def tiny(*, seed: int = 0, hidden_size: int = TINY_HIDDEN_SIZE) -> CaptionLM:
    """A tiny random Mistral and tokenizer (no files), float32 on the CPU."""
    from transformers import MistralForCausalLM

    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MistralForCausalLM(tiny_config(tokenizer, hidden_size=hidden_size))
    return CaptionLM(model=model.eval(), tokenizer=tokenizer, name="tiny")
