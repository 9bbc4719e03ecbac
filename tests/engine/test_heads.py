"""The multi-task projector: shapes, pooling, layer weighting, window sums, decoding."""

from __future__ import annotations

import math

import pytest
import torch

from engine.labels import GENRES, INSTRUMENTS, KEYS, MOODS, VOCALS
from engine.models.heads import (
    TASK_LABELS,
    HeadsConfig,
    build,
    combine,
    decode,
    sonicverse_tasks,
)


def small(**kw) -> HeadsConfig:
    base = dict(
        layers=4,
        input_dim=8,
        backbone_dim=6,
        head_hidden_dim=5,
        llm_dim=7,
        projector_hidden_dim=9,
        content_tokens=3,
        task_tokens=2,
        pad_frames=None,
    )
    return HeadsConfig(**{**base, **kw})


def hidden(n: int, t: int, *, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 4, t, 8, generator=torch.Generator().manual_seed(seed))


def test_label_sets_have_the_paper_sizes() -> None:
    sizes = {t.name: t.classes for t in sonicverse_tasks()}
    assert sizes == {"instruments": 40, "moods": 56, "genres": 87, "key": 24, "vocals": 3}
    assert TASK_LABELS["key"] is KEYS and TASK_LABELS["vocals"] is VOCALS
    for labels in (INSTRUMENTS, MOODS, GENRES):
        assert len(set(labels)) == len(labels) and list(labels) == sorted(labels)


def test_output_shapes_and_token_order() -> None:
    config = small()
    p = build(config, seed=0).eval()
    assert list(p.heads) == ["instruments", "moods", "genres", "key", "vocals"]
    with torch.no_grad():
        out = p(p.pool(hidden(3, 11)))
        assert {k: tuple(v.shape) for k, v in out.logits.items()} == {
            "instruments": (3, 40),
            "moods": (3, 56),
            "genres": (3, 87),
            "key": (3, 24),
            "vocals": (3, 3),
        }
        assert out.tokens.shape == (3, config.num_tokens, 7) and config.num_tokens == 3 + 5 * 2
        # the last task_tokens tokens are the vocals projector applied to the vocals logits
        torch.testing.assert_close(
            out.tokens[:, -2:], p.task_tokens["vocals"](out.logits["vocals"])
        )


def test_heads_only_has_no_projectors() -> None:
    p = build(small(llm_dim=None), seed=0).eval()
    assert not hasattr(p, "content") and p.config.num_tokens == 0
    with torch.no_grad():
        assert p(p.pool(hidden(2, 5))).tokens is None


def test_pooling_is_a_time_mean_and_ignores_padding_frames() -> None:
    p = build(small(), seed=1).eval()
    h = hidden(2, 10)
    padded = h.clone()
    padded[1, :, 6:] = 123.0  # junk beyond clip 1's 6 real frames
    with torch.no_grad():
        full = p.pool(h[1:, :, :6])
        masked = p.pool(padded, torch.tensor([10, 6]))
        torch.testing.assert_close(masked.encoder_sum[1], full.encoder_sum[0])
        torch.testing.assert_close(p(masked).logits["key"][1], p(full).logits["key"][0])
        torch.testing.assert_close(full.encoder_sum[0] / 6, h[1, :, :6].mean(dim=1))


def test_windows_added_equal_one_pass() -> None:
    p = build(small(pad_frames=12), seed=2).eval()
    h = hidden(1, 20)
    with torch.no_grad():
        whole = p(p.pool(h))
        parts = [p.pool(h[:, :, :8]), p.pool(h[:, :, 8:])]
        cat = type(parts[0])(
            *(
                torch.cat([getattr(x, f) for x in parts])
                for f in ("encoder_sum", "backbone_sum", "frames")
            )
        )
        joined = p(combine(cat, [0, 0], count=1))
    for task in whole.logits:
        torch.testing.assert_close(joined.logits[task], whole.logits[task], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(joined.tokens, whole.tokens, rtol=1e-5, atol=1e-5)


def test_pad_frames_dilutes_short_clips_like_zero_padding() -> None:
    p = build(small(pad_frames=12), seed=3).eval()
    h = hidden(1, 5)
    zero_padded = torch.cat([h, torch.zeros(1, 4, 7, 8)], dim=2)
    plain = build(small(pad_frames=None), seed=3).eval()
    with torch.no_grad():
        a = p(p.pool(h))
        b = plain(plain.pool(zero_padded))
    torch.testing.assert_close(a.logits["moods"], b.logits["moods"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.tokens, b.tokens, rtol=1e-5, atol=1e-5)


def test_layer_softmax_selects_a_layer() -> None:
    p = build(small(), seed=4).eval()
    h = hidden(1, 6)
    only_layer_2 = h.clone()
    only_layer_2[:, [0, 1, 3]] = torch.randn(1, 3, 6, 8)
    with torch.no_grad():
        p.content.layer_logits.copy_(torch.tensor([-50.0, -50.0, 50.0, -50.0]))
        p.heads["key"].layer_logits.copy_(torch.tensor([-50.0, -50.0, 50.0, -50.0]))
        a, b = p(p.pool(h)), p(p.pool(only_layer_2))
    torch.testing.assert_close(a.logits["key"], b.logits["key"])
    torch.testing.assert_close(a.tokens[:, :3], b.tokens[:, :3])
    assert not torch.allclose(a.logits["genres"], b.logits["genres"])  # uniform weights there


def test_seed_reproduces_weights() -> None:
    a, b, c = build(small(), seed=5), build(small(), seed=5), build(small(), seed=6)
    assert torch.equal(a.backbone.weight, b.backbone.weight)
    assert not torch.equal(a.backbone.weight, c.backbone.weight)


def test_decode_labels_probabilities_and_tags() -> None:
    key = torch.full((2, 24), -5.0)
    key[0, KEYS.index("F# minor")] = 5.0
    key[0, KEYS.index("A major")] = 4.0
    vocals = torch.tensor([[0.0, 0.0, 3.0], [3.0, 0.0, 0.0]])
    inst = torch.full((2, 40), -6.0)
    inst[0, INSTRUMENTS.index("piano")] = 3.0
    inst[0, INSTRUMENTS.index("drums")] = 1.0
    inst[0, INSTRUMENTS.index("voice")] = -0.5  # sigmoid 0.38
    logits = {
        "key": key,
        "vocals": vocals,
        "instruments": inst,
        "moods": torch.full((2, 56), -6.0),
        "genres": torch.full((2, 87), 6.0),
    }
    res = decode(logits, key_candidates=1, tag_threshold=0.5, max_tags=3)
    assert res[0].key.key == "F# minor" and res[0].key.candidates[0][0] == "A major"
    assert len(res[0].key.candidates) == 1 and 0 < res[0].key.confidence <= 1
    assert res[0].vocals.label == "female" and res[1].vocals.label == "none"
    assert math.isclose(sum(res[0].vocals.probabilities), 1.0, rel_tol=1e-6)
    assert [t.label for t in res[0].instruments] == ["piano", "drums"]
    assert res[0].instruments[0].score > res[0].instruments[1].score >= 0.5
    assert res[0].moods == () and len(res[1].genres) == 3
    assert [t.label for t in res[1].genres] == list(GENRES[:3])


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_decode_threshold_edges(threshold: float) -> None:
    logits = {"instruments": torch.zeros(1, 40)}
    (res,) = decode(logits, tag_threshold=threshold, max_tags=40)
    assert len(res.instruments) == (40 if threshold == 0.0 else 0)
    assert res.key is None and res.vocals is None


def test_bfloat16_weights_pool_in_float32() -> None:
    ref = build(small(pad_frames=760), seed=8).eval()
    half = build(small(pad_frames=760), seed=8).eval().to(torch.bfloat16)
    h = hidden(2, 749)
    with torch.no_grad():
        pooled = half.pool(h)
        assert pooled.encoder_sum.dtype == torch.float32
        a, b = ref(ref.pool(h)), half(pooled)
    assert b.tokens.dtype == torch.bfloat16
    torch.testing.assert_close(b.logits["key"].float(), a.logits["key"], rtol=0.05, atol=0.05)
