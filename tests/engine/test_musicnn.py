"""The musicnn port: parity with TensorFlow, the log-mel front end, loading, shapes."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import ModelLoadError
from engine.models.musicnn import (
    PRETRAINED,
    LogMel,
    Musicnn,
    MusicnnConfig,
    mel_filterbank,
    resolve_weights,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "musicnn_parity.npz"
TOL = 1e-3


@functools.cache
def parity() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as f:
        return dict(f)


@functools.cache
def pretrained(name: str) -> Musicnn:
    return Musicnn.from_pretrained(name)


def tone(freq_hz: float, *, seconds: float, sr: int = 16000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.mark.parametrize("name", PRETRAINED)
def test_port_reproduces_tensorflow_outputs(name: str) -> None:
    model, ref = pretrained(name), parity()
    logmel = torch.from_numpy(ref["logmel"].astype(np.float32))
    assert logmel.shape == (len(ref["clip_names"]), 187, 96)
    with torch.inference_mode():
        out = model(logmel)
    probs = torch.sigmoid(out.logits).numpy()
    np.testing.assert_allclose(probs, ref[f"{name}/probs"], atol=TOL, rtol=0)
    pen = out.penultimate.numpy()
    np.testing.assert_allclose(pen, ref[f"{name}/penultimate"], atol=TOL, rtol=0)
    # The clips are of different kinds: the outputs must differ between them.
    assert np.ptp(probs, axis=0).max() > 0.3


@pytest.mark.parametrize("name", PRETRAINED)
def test_audio_to_tags_matches_tensorflow_end_to_end(name: str) -> None:
    model, ref = pretrained(name), parity()
    audio = torch.from_numpy(ref["e2e_pcm16"].astype(np.float32) / 32767)[None]
    logmel = LogMel(model.config)(audio)[:, : model.config.patch_frames]
    with torch.inference_mode():
        out = model(logmel)
    np.testing.assert_allclose(
        torch.sigmoid(out.logits).numpy(), ref[f"{name}/e2e_probs"], atol=TOL, rtol=0
    )
    np.testing.assert_allclose(
        out.penultimate.numpy(), ref[f"{name}/e2e_penultimate"], atol=TOL, rtol=0
    )


def test_shipped_models_carry_their_tags() -> None:
    mtt, msd = pretrained("MTT_musicnn"), pretrained("MSD_musicnn")
    assert len(mtt.tags) == len(msd.tags) == 50
    assert {"no vocals", "female vocal", "choir", "piano"} <= set(mtt.tags)
    assert {"female vocalists", "male vocalists", "instrumental", "jazz"} <= set(msd.tags)


@pytest.mark.parametrize("batch", [1, 12])
def test_shapes_for_one_and_many_patches(batch: int) -> None:
    model = pretrained("MTT_musicnn")
    x = torch.rand(batch, 187, 96) * 3
    with torch.inference_mode():
        out = model(x)
    assert out.logits.shape == (batch, 50)
    assert out.penultimate.shape == (batch, 200)
    assert torch.isfinite(out.logits).all()


def test_batching_does_not_change_results() -> None:
    model = pretrained("MSD_musicnn")
    x = torch.rand(3, 187, 96) * 3
    with torch.inference_mode():
        together = model(x).logits
        alone = torch.cat([model(x[i : i + 1]).logits for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_eval_shortcut_equals_relu_batchnorm_max() -> None:
    """The front end's max/min trick must equal ReLU -> batch norm -> max, negative scales too."""
    model = Musicnn.tiny(seed=3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, -1.0, 1.0)
    x = torch.randn(2, 187, 96) + 1.0
    with torch.no_grad():
        fast = model(x).logits
        for branch in (*model.timbral, *model.temporal):
            branch.train()  # takes the plain path; its batch norm stays in eval below
            branch.bn.eval()
        slow = model(x).logits
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_tiny_variant_runs_on_any_length() -> None:
    model = Musicnn.tiny()
    assert model.config.n_tags == len(model.tags) == 8
    with torch.inference_mode():
        assert model(torch.rand(3, 40, 96)).logits.shape == (3, 8)


def test_logmel_shape_and_silence() -> None:
    lm = LogMel(MusicnnConfig())
    out = lm(torch.zeros(2, 16000))
    assert out.shape == (2, 1 + 16000 // 256, 96)
    assert out.abs().max() == 0.0  # log10(10000 * 0 + 1)


def test_logmel_puts_a_tone_in_the_right_band() -> None:
    cfg = MusicnnConfig()
    out = LogMel(cfg)(torch.from_numpy(tone(1000.0, seconds=1.0))[None])[0]
    fb = mel_filterbank(sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels)
    bin_1k = round(1000.0 * cfg.n_fft / cfg.sr)
    assert int(out[10:-10].mean(dim=0).argmax()) == int(fb[:, bin_1k].argmax())


def test_logmel_stays_finite_on_loud_audio() -> None:
    """musicnn's float16 cast overflows here; the port must not."""
    square = np.sign(tone(80.0, seconds=1.0, amp=1.0))
    out = LogMel(MusicnnConfig())(torch.from_numpy(square)[None])
    assert torch.isfinite(out).all()
    assert out.max() > np.log10(10000 * 6.55 + 1)  # above float16's overflow point


def test_logmel_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    audio = (tone(220.0, seconds=2.0) + 0.1 * rng.standard_normal(32000)).astype(np.float32)
    ref = librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=512, hop_length=256, n_mels=96)
    ref = np.log10(10000 * ref.T + 1)
    ours = LogMel(MusicnnConfig())(torch.from_numpy(audio)[None])[0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)
    fb = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)
    np.testing.assert_allclose(mel_filterbank(sr=16000, n_fft=512, n_mels=96), fb, atol=1e-7)


def test_loads_offline_without_network(tmp_path: Path) -> None:
    """Loading the shipped weights in a fresh process with the hub offline and no sockets."""
    code = (
        "import socket\n"
        "def no_net(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = no_net\n"
        "socket.create_connection = no_net\n"
        "from engine.models.musicnn import Musicnn\n"
        "m = Musicnn.from_pretrained('MSD_musicnn')\n"
        "print(len(m.tags))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "50"


def test_folder_and_file_paths(tmp_path: Path) -> None:
    src = resolve_weights("MTT_musicnn")
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "mine.safetensors").write_bytes(src.read_bytes())
    assert Musicnn.from_pretrained(folder).tags == pretrained("MTT_musicnn").tags
    assert Musicnn.from_pretrained(folder / "mine.safetensors").config == MusicnnConfig()


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="MTT_musicnn"):
        Musicnn.from_pretrained("MTT_musicn")
    with pytest.raises(ModelLoadError, match="holds 0"):
        Musicnn.from_pretrained(tmp_path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="not a converted musicnn checkpoint"):
        Musicnn.from_pretrained(bad)


def test_numpy_logmel_matches_torch() -> None:
    from engine.models.musicnn_onnx import NumpyLogMel

    rng = np.random.default_rng(5)
    audio = (0.3 * rng.standard_normal(16000 * 2)).astype(np.float32)
    cfg = MusicnnConfig()
    ours = NumpyLogMel(cfg)(audio)
    ref = LogMel(cfg)(torch.from_numpy(audio)[None])[0].numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_lite_tagging_does_not_import_torch() -> None:
    """With onnxruntime installed, the tagger's fast path never imports torch."""
    pytest.importorskip("onnxruntime")
    code = (
        "import sys, numpy as np\n"
        "from engine.tagging import Tagger, TaggerSettings\n"
        "Tagger.load(TaggerSettings()).tag([np.zeros(16000, np.float32)])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
