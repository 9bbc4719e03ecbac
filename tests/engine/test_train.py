"""Training on tiny models: dataset build, losses, stages, resume, checkpoints served."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.data import features
from engine.data.build import build
from engine.data.chunks import LabelLengthError, MissingAudioError, MissingCaptionError
from engine.data.teacher import LABEL_SETS
from engine.labels import PITCH_CLASSES
from engine.prompts import caption_instruction
from engine.train import checkpointing, losses
from engine.train.config import TrainConfigError, from_table
from engine.train.loop import OutOfMemory
from engine.train.main import fit
from tests.synth import midi_hz, tone

SR = 24000
TINY = {
    "backbone_dim": 64,
    "head_hidden_dim": 64,
    "projector_hidden_dim": 32,
    "content_tokens": 4,
    "task_tokens": 2,
    "device": "cpu",
    "resume": "",
}


def write_set(root: Path, n: int = 48, *, seconds: float = 2.0) -> Path:
    """``n`` tones, pitch class ``i % 12`` in one of two octaves; captions, lyrics, key."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        pc = i % 12
        m = 48 + pc + 12 * int(rng.integers(0, 2))
        y = tone(midi_hz(m), seconds, sr=SR, amp=float(rng.uniform(0.1, 0.3)))
        sf.write(root / f"c{i}.wav", y, SR)
        name = PITCH_CLASSES[pc]
        rows.append(
            {
                "id": f"s{i}",
                "audio": f"c{i}.wav",
                "captions": [f"A calm piano tone on {name}."],
                "lyrics": f"song of {name} " * 2,
                "labels": {"key": f"{name} major"},
            }
        )
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return manifest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    manifest = write_set(root)
    build(manifest, root / "data", preset="sonicverse-tiny", chunk_s=2.0, teacher="none")
    return root / "data"


def config(data: Path, out: Path, **kw: object):
    return from_table({"data": str(data), "out": str(out), **TINY, **kw})


@pytest.fixture(scope="module")
def heads_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("heads")
    cfg = config(
        dataset, out, stage="heads", steps=160, batch_size=36, lr=0.1, holdout=0.25, pad_frames=1
    )
    return fit(cfg)


def test_dataset_layout_and_labels(dataset: Path) -> None:
    data = features.load(dataset)
    assert len(data) == 48 and data.features.shape == (48, 3, 32)  # tiny MERT: 3 layers x 32
    assert data.targets["key"].shape == (48, 24) and bool(data.known["key"].all())
    assert not bool(data.known["vocals"].any())  # no teacher, no manifest label: unknown
    assert data.chunks[1]["labels"]["key"] == ["C# major"]
    meta = json.loads((dataset / "meta.json").read_text())
    assert meta["labels"]["key"] == list(LABEL_SETS["key"]) and meta["layers"] == 3
    assert (dataset / "chunks.jsonl").read_text().count("\n") == 48
    with pytest.raises(LabelLengthError, match=r"key labels have length 24 .* row 1 id 's0'"):
        features.load(dataset, label_sets={**LABEL_SETS, "key": LABEL_SETS["key"][:12]})


def test_build_resumes_after_the_last_shard(tmp_path: Path) -> None:
    manifest = write_set(tmp_path, n=6, seconds=1.5)
    out = tmp_path / "data"
    build(manifest, out, preset="sonicverse-tiny", chunk_s=2.0, teacher="none", shard_size=2)
    index = json.loads((out / "index.json").read_text())
    assert index["shards"] == ["shard-00000", "shard-00001", "shard-00002"]
    first = (out / "shard-00000.safetensors").stat().st_mtime_ns
    (out / "index.json").write_text(json.dumps({"shards": index["shards"][:1], "complete": False}))
    seen: list[int] = []
    build(
        manifest,
        out,
        preset="sonicverse-tiny",
        chunk_s=2.0,
        teacher="none",
        shard_size=2,
        progress=lambda s, d, t: seen.append(d),
    )
    assert (out / "shard-00000.safetensors").stat().st_mtime_ns == first
    assert seen[0] == 2 and len(features.load(out)) == 6
    with pytest.raises(Exception, match="other .*chunk_s"):
        build(manifest, out, preset="sonicverse-tiny", chunk_s=1.0, teacher="none", shard_size=2)


def test_teacher_labels_from_lite(tmp_path: Path) -> None:
    manifest = write_set(tmp_path, n=2, seconds=3.0)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for r in rows:
        del r["labels"]
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    build(manifest, tmp_path / "data", preset="sonicverse-tiny", chunk_s=3.0, teacher="lite")
    data = features.load(tmp_path / "data")
    assert bool(data.known["key"].all()) and bool(data.known["vocals"].all())
    assert data.chunks[0]["label_source"]["key"] == "lite"
    assert data.targets["vocals"].sum(dim=1).tolist() == [1.0, 1.0]


def test_bad_rows_are_named(tmp_path: Path) -> None:
    manifest = write_set(tmp_path, n=2, seconds=1.0)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[1]["audio"] = "gone.wav"
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(MissingAudioError, match=r"row 2 \(id 's1'.*gone.wav"):
        build(manifest, tmp_path / "d1", preset="sonicverse-tiny", teacher="none")
    rows[1]["audio"], rows[1]["captions"] = "c1.wav", []
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(MissingCaptionError, match=r"row 2 \(id 's1'"):
        build(manifest, tmp_path / "d2", preset="sonicverse-tiny", teacher="none")


def test_heads_learn_pitch_class_on_held_out_chunks(heads_run) -> None:
    ev = heads_run.eval
    assert ev["chunks"] == 12
    assert ev["key_accuracy"] >= 0.5  # chance: 1/12
    first, last = heads_run.history[0], heads_run.history[-1]
    assert last["bce/key"] < 0.5 * first["bce/key"]


def test_alignment_lifts_lyrics_retrieval_above_chance(heads_run) -> None:
    ev = heads_run.eval
    assert ev["lyrics_r1"] >= 2 * ev["lyrics_r1_chance"]
    assert "info_nce" in heads_run.history[-1]


def test_info_nce_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    a, t = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    tau = torch.tensor(0.1)
    got = losses.info_nce(a, t, tau)
    an = [x / x.norm() for x in a]
    tn = [x / x.norm() for x in t]
    s = [[float(an[i] @ tn[j]) / 0.1 for j in range(5)] for i in range(5)]
    a2t = -sum(s[i][i] - np.log(sum(np.exp(s[i][j]) for j in range(5))) for i in range(5)) / 5
    t2a = -sum(s[i][i] - np.log(sum(np.exp(s[j][i]) for j in range(5))) for i in range(5)) / 5
    assert float(got) == pytest.approx((a2t + t2a) / 2, rel=1e-5)
    assert losses.first_per_song(["a", "b", "a", "c", "b"]) == [0, 1, 3]


def test_lm_loss_masks_the_prompt() -> None:
    logits = torch.randn(1, 4, 10)
    labels = torch.tensor([[losses.IGNORE, losses.IGNORE, 3, 7]])
    want = torch.nn.functional.cross_entropy(logits[0, 1:3], torch.tensor([3, 7]))
    assert float(losses.lm_loss(logits, labels)) == pytest.approx(float(want))


def test_lora_loss_falls_and_checkpoint_is_served(dataset: Path, tmp_path: Path) -> None:
    from engine import backends, presets
    from engine.audio import Audio
    from engine.backends.base import Segment
    from engine.types import Region

    cfg = config(dataset, tmp_path, stage="lora", steps=24, batch_size=8, lr=3e-3, log_every=4)
    result = fit(cfg)
    lm = [h["lm"] for h in result.history]
    assert lm[-1] < lm[0] - 0.2
    files = sorted(p.name for p in result.model_dir.iterdir())
    assert "adapter_model.safetensors" in files and "non_lora_trainables.safetensors" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth"))]
    preset = presets.load(result.preset)
    assert preset.name == "my-model" and preset.options.checkpoint.path == str(result.model_dir)
    b = backends.create(preset, device="cpu")
    try:
        assert b.projector.config.backbone_on_pooled and hasattr(b.lm.model, "disable_adapter")
        y = tone(midi_hz(60), 2.0, sr=SR)[None]
        seg = Segment(Region(0.0, 2.0), Audio(y, SR, "x.wav"), lyrics="song of C")
        [ann] = b.analyze([seg])
        assert ann.caption and ann.key is not None
        trained = result.model.projector.state_dict()
        for k, v in b.projector.state_dict().items():
            torch.testing.assert_close(v, trained[k], rtol=1e-5, atol=1e-6)
    finally:
        b.close()


def test_resume_gives_the_same_weights(dataset: Path, tmp_path: Path) -> None:
    kw = {"stage": "lora", "steps": 6, "batch_size": 4, "lr": 3e-3, "save_every": 2}
    whole = fit(config(dataset, tmp_path / "a", **kw, log_every=1))
    cut = config(dataset, tmp_path / "b", **{**kw, "resume": "auto", "log_every": 1})
    first = fit(cut, stop_after=3)
    assert first.model_dir is None and (tmp_path / "b" / "checkpoint-2").is_dir()
    # killed after logging step 3 but before its checkpoint: resume at step 2
    shutil.rmtree(tmp_path / "b" / "checkpoint-3")
    resumed = fit(cut)
    assert resumed.steps == 6
    want = dict(whole.model.trainable())
    got = dict(resumed.model.trainable())
    assert set(want) == set(got) and any("lora_" in k for k in want)
    diffs = {k: float((got[k] - v).detach().abs().max()) for k, v in want.items()}
    assert max(diffs.values()) == 0.0, {k: d for k, d in diffs.items() if d}
    steps = [line.split(",")[0] for line in (tmp_path / "b" / "log.csv").read_text().split()[1:]]
    assert steps == ["1.0", "2.0", "3.0", "4.0", "5.0", "6.0"]  # step 3 once, not twice


def _train_cli(tmp_path: Path, dataset: Path, **kw: object) -> list[str]:
    from engine.cli import main

    table = {"data": str(dataset), "out": str(tmp_path / "run"), **TINY, "resume": "auto", **kw}
    toml = tmp_path / "train.toml"
    toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items()))
    return [str(main(["train", "--config", str(toml)]))]


def test_rerun_with_another_model_size_or_lr_is_one_line(
    dataset: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    base = {"stage": "heads", "steps": 4, "save_every": 2, "batch_size": 4}
    fit(config(dataset, tmp_path / "run", **base, resume="auto"), stop_after=2)
    capfd.readouterr()
    for change, named in (
        ({"backbone_dim": 32}, "backbone_dim=64 there, 32 here"),
        ({"lr": 0.01}, "lr=0.001 there, 0.01 here"),
        ({"batch_size": 2}, "batch_size=4 there, 2 here"),
        ({"stage": "projector"}, "stage='heads' there, 'projector' here"),
    ):
        assert _train_cli(tmp_path, dataset, **{**base, **change}) == ["2"]
        err = capfd.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err  # no traceback, no empty progress bar, not wrapped
        assert str(tmp_path / "run" / "checkpoint-2") in lines[0] and named in lines[0], err
    assert _train_cli(tmp_path, dataset, **base) == ["0"]  # the same config resumes


def test_chunks_join_a_short_tail_as_serving_does(tmp_path: Path) -> None:
    from engine.data.chunks import chunk_rows
    from engine.data.manifest import ManifestRow
    from engine.pipeline import plan_regions

    sf.write(tmp_path / "a.wav", np.zeros(23 * 8000, np.float32), 8000)
    row = ManifestRow(id="a", audio=str(tmp_path / "a.wav"), captions=("x",))
    spans = [(c.start_s, c.end_s) for c in chunk_rows([row], chunk_s=10.0)]
    assert spans == [(0.0, 10.0), (10.0, 23.0)]  # no 3 s chunk
    served = plan_regions(23.0, length_s=10.0, min_tail_s=5.0)
    assert spans == [(r.start_s, r.end_s) for r in served]


def test_export_import_round_trip() -> None:
    from engine.models import heads
    from engine.models.checkpoint import import_sonicverse_heads

    cfg = config(Path("."), Path("."))
    from engine.train.model import heads_config

    hc = heads_config(cfg, layers=3, dim=16, llm_dim=24, label_sets=LABEL_SETS)
    p = heads.build(hc, seed=1)
    raw = checkpointing.export_sonicverse_heads(p)
    assert all(k.startswith(checkpointing.RELEASE_PREFIX) for k in raw)
    _, state = import_sonicverse_heads(raw, pad_frames=hc.pad_frames or 1)
    for k, v in p.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=1e-5, atol=1e-6)


def test_config_errors_and_knobs(dataset: Path, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(TrainConfigError, match="unknown key"):
        from_table({"data": "d", "out": "o", "stepz": 3})
    with pytest.raises(TrainConfigError, match="missing required key 'data'"):
        from_table({"out": "o"})
    if not torch.cuda.is_available():
        with pytest.raises(TrainConfigError, match="sonicverse-cpu.*batch_size"):
            fit(config(dataset, tmp_path, stage="qlora", steps=1))

    from engine.train.model import TrainModel

    def oom(self, batch, *, epoch=0):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(TrainModel, "forward", oom)
    with pytest.raises(
        OutOfMemory, match="batch_size=4.*grad_accum.*gradient_checkpointing.*qlora"
    ):
        fit(config(dataset, tmp_path, stage="heads", steps=1, batch_size=4))


def test_caption_prompt_carries_lyrics() -> None:
    assert caption_instruction() == "Describe the music. <sound>"
    assert (
        caption_instruction(lyrics="  Hold on,\n hold on <sound>")
        == 'Describe the music. Lyrics: "Hold on, hold on" <sound>'
    )
    assert caption_instruction(lyrics="la " * 400).endswith('la..." <sound>')


def test_cli_dataset_build_and_train(tmp_path: Path) -> None:
    from engine.cli import main

    manifest = write_set(tmp_path, n=4, seconds=1.0)
    data = tmp_path / "data"
    args = ["dataset", "build", str(manifest), "--out", str(data), "--preset", "sonicverse-tiny"]
    assert main([*args, "--chunk-s", "1", "--teacher", "none"]) == 0
    toml = tmp_path / "train.toml"
    toml.write_text(
        f'data = "{data}"\nout = "{tmp_path / "run"}"\nstage = "heads"\nsteps = 3\n'
        'backbone_dim = 16\nhead_hidden_dim = 16\ndevice = "cpu"\nname = "cli-model"\n'
    )
    assert main(["train", "--config", str(toml)]) == 0
    assert (tmp_path / "run" / "cli-model.toml").is_file()
    assert (tmp_path / "run" / "log.csv").read_text().startswith("step,lr,steps_per_s")


@pytest.mark.gpu
def test_qlora_on_cuda_trains_stops_and_resumes(dataset: Path, tmp_path: Path) -> None:
    """QLoRA on a real GPU: a tiny LLM in the download layout loads in NF4, trains in bf16
    with gradient checkpointing, stops with a checkpoint and resumes at the next step."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    import tomllib

    from engine import presets
    from engine.models import llm

    lm = llm.tiny(seed=4)
    lm.model.save_pretrained(tmp_path / "llm")
    lm.tokenizer.save_pretrained(tmp_path / "llm")
    table = tomllib.loads(presets.available()["sonicverse-tiny"].read_text(encoding="utf-8"))
    table["name"] = "tiny-nf4"
    table["sonicverse"]["llm"].update(
        variant="pretrained", path=str(tmp_path / "llm"), quantization="nf4", dtype="bfloat16"
    )
    preset = tmp_path / "tiny-nf4.toml"
    preset.write_text(checkpointing.dumps_toml(table), encoding="utf-8")
    cfg = config(
        dataset,
        tmp_path / "run",
        stage="qlora",
        preset=str(preset),
        steps=4,
        batch_size=8,
        precision="bf16",
        gradient_checkpointing=True,
        device="cuda",
        resume="auto",
        log_every=1,
    )
    first = fit(cfg, stop_after=2)
    assert first.steps == 2 and first.model_dir is None
    assert any("4bit" in type(m).__name__ for m in first.model.llm.modules())
    assert (tmp_path / "run" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert all(np.isfinite(h["total"]) for h in first.history)
    del first
    torch.cuda.empty_cache()
    again = fit(cfg)
    assert [int(h["step"]) for h in again.history] == [3, 4]
    assert again.model_dir is not None and (again.model_dir / "adapter_config.json").is_file()
