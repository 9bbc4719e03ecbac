"""Vocals, instrument, genre and mood tags from the pretrained musicnn taggers.

The ``lite`` backend's tagger. Two musicnn models (MagnaTagATune and Million Song Dataset,
50 tags each; weights ship with the package, see ``engine/weights/musicnn/README.md``) run
on up to ``max_patches`` 3 s patches of every region, spread evenly (the ``lite`` preset: 1,
the middle 3 s; 0: every patch, the networks' trained use), batched; a region's tag scores
are the mean of its patches' probabilities. :data:`~engine.labels.TAG_FIELDS` maps the 100
source tags onto our three fields (a canonical label's score is the max of its source tags) and
:data:`~engine.labels.VOCAL_ROLES` says which tags are evidence of vocals, of no vocals, of a
female or of a male voice.

Vocals: with ``present`` the max score of the vocal tags (vocal, vocals, singing, voice),
``absent`` the max of the "no vocals"/"instrumental" tags, ``choir`` the max of
"choir"/"choral", and ``female``, ``male`` the max of each gender's tags (see
:data:`~engine.labels.VOCAL_ROLES`)::

    margin     = max(present - absent - vocal_threshold, choir - choir_threshold)
    P(vocals)  = sigmoid(sharpness * margin)
    P(female | vocals) = sigmoid(sharpness * (female - male - female_threshold))
    probabilities = (1 - P(vocals), P(vocals) P(male | vocals), P(vocals) P(female | vocals))

The label follows the two decisions, so the thresholds are decision boundaries: ``none``
when P(vocals) < 0.5, else ``female`` when P(female | vocals) >= 0.5, else ``male`` (it can
differ from the argmax of the three probabilities when the gender is uncertain). The
thresholds' defaults were chosen on synthesized labelled clips (``scripts/make_vocal_set.py``,
``bench/tagger.py --fit``), never on the test clips.

The networks run in ONNX Runtime when it is installed and the shipped ``.onnx`` exports
match the weights (``runtime = "auto"``, the default: outputs agree with PyTorch to ~1e-6 and
the process never imports torch), else in PyTorch; the two ONNX networks run side by side on
a thread each. Either way the log-mel front end is numpy (scipy.fft), computed once per
region, and the patches of all regions are batched together. Worker threads
sleep rather than spin while they wait (``OMP_WAIT_POLICY=PASSIVE`` for torch, no spinning for
ONNX Runtime): a busy DAW sharing the cores then slows tagging down in proportion instead of
collapsing it.

Importing this module does not import torch (the preset loader imports it); :meth:`Tagger.load`
imports ONNX Runtime or torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import AudioError, ModelLoadError, PresetError, check_range
from engine.labels import FIELDS, IGNORED_TAGS, TAG_FIELDS, VOCAL_ROLES
from engine.types import Tag, VocalsEstimate

if TYPE_CHECKING:
    from engine.models.musicnn import Musicnn
    from engine.models.musicnn_onnx import OnnxMusicnn

    Network = Musicnn | OnnxMusicnn

log = logging.getLogger(__name__)

SR = 16000
"""Sample rate (Hz) the tagger expects; resample with :func:`engine.audio.resample`."""

SHORT_REGION_FLAG = "short_region_padded"

RUNTIMES = ("auto", "onnx", "torch")
"""Where the networks run: ONNX Runtime when available (``auto``), only ONNX Runtime, PyTorch."""


@dataclass(frozen=True)
class TaggerSettings:
    """What the tagger runs and how it turns scores into tags (the ``[lite.tagger]`` table).

    Scores are mean patch probabilities in [0, 1]. Defaults were chosen on synthesized
    labelled clips (see the module docstring).
    """

    models: tuple[str, ...] = ("MTT_musicnn", "MSD_musicnn")  # musicnn checkpoints to run
    instrument_threshold: float = 0.1  # min score for an instrument tag
    genre_threshold: float = 0.22  # min score for a genre tag
    mood_threshold: float = 0.1  # min score for a mood tag
    max_tags: int = 4  # most tags reported per field, best first
    vocal_threshold: float = 0.03  # present - absent vocal-tag score at which P(vocals) = 0.5
    choir_threshold: float = 0.705  # ... or choir/choral score at which P(vocals) = 0.5
    female_threshold: float = 0.02  # female - male score at which P(female | vocals) = 0.5
    sharpness: float = 20.0  # slope turning those score margins into probabilities
    max_patches: int = 1  # most 3 s patches per region, spread evenly (0: all; the speed lever)
    # ... for a region asked for alone (a DAW's region request), where no track decoding
    # steadies its vocals (0: all; more patches are right more often and answer later; 2 is
    # the most that answer an uncached 10 s region within 100 ms at p50 beside a busy core)
    max_patches_alone: int = 2
    batch_patches: int = 8  # 3 s patches per forward pass (memory vs. speed)
    runtime: str = "auto"  # auto (ONNX Runtime if installed, else torch), onnx, torch
    threads: int = 0  # intra-op threads per network (0: ONNX nets share the cores, torch all)

    def __post_init__(self) -> None:
        known = sorted({model for model, _ in TAG_FIELDS})
        if not self.models or any(m not in known for m in self.models):
            raise PresetError(
                f"tagger.models={list(self.models)!r}: expected a non-empty list of "
                f"{', '.join(known)}"
            )
        for name in ("instrument_threshold", "genre_threshold", "mood_threshold"):
            check_range(f"tagger.{name}", getattr(self, name), 0.0, 1.0)
        check_range("tagger.vocal_threshold", self.vocal_threshold, -1.0, 1.0)
        check_range("tagger.choir_threshold", self.choir_threshold, 0.0, 1.0)
        check_range("tagger.female_threshold", self.female_threshold, -1.0, 1.0)
        check_range("tagger.max_tags", self.max_tags, 0, 50)
        check_range("tagger.sharpness", self.sharpness, 0.1, 1000.0)
        check_range("tagger.max_patches", self.max_patches, 0, 10000)
        check_range("tagger.max_patches_alone", self.max_patches_alone, 0, 10000)
        check_range("tagger.batch_patches", self.batch_patches, 1, 4096)
        check_range("tagger.threads", self.threads, 0, 256)
        if self.runtime not in RUNTIMES:
            raise PresetError(
                f"tagger.runtime={self.runtime!r}: expected one of {', '.join(RUNTIMES)}"
            )


@dataclass(frozen=True)
class TagResult:
    """What the tagger says about one region.

    Attributes:
        vocals: none / male / female with probabilities summing to 1.
        instruments: instrument tags above threshold, best first.
        genres: genre tags above threshold, best first.
        moods: mood/theme tags above threshold, best first.
        flags: remarks, e.g. ``"short_region_padded"`` when the region was shorter than one
            3 s patch and was zero-padded.
        patches: how many 3 s patches were averaged.
        scores: every source tag's mean probability, keyed ``"<model>/<tag>"``.
    """

    vocals: VocalsEstimate
    instruments: tuple[Tag, ...]
    genres: tuple[Tag, ...]
    moods: tuple[Tag, ...]
    flags: tuple[str, ...] = ()
    patches: int = 0
    scores: dict[str, float] = field(default_factory=dict, compare=False, repr=False)


class Tagger:
    """musicnn models + the tag tables; build with :meth:`load`.

    Attributes:
        settings: the settings it was loaded with.
        models: model name -> network (a PyTorch :class:`~engine.models.musicnn.Musicnn` or an
            :class:`~engine.models.musicnn_onnx.OnnxMusicnn`), in ``settings.models`` order.
        device: where PyTorch networks run.
        frontend: the numpy log-mel shared by the models.
        fingerprint: 16 hex digits that change whenever the weights or the settings change
            (for the backend's cache key).
    """

    def __init__(
        self, settings: TaggerSettings, models: dict[str, Network], *, device: str = "cpu"
    ) -> None:
        from engine.models.musicnn_onnx import NumpyLogMel

        first = next(iter(models.values())).config
        for name, m in models.items():
            if (m.config.sr, m.config.n_fft, m.config.hop_length, m.config.n_mels) != (
                first.sr,
                first.n_fft,
                first.hop_length,
                first.n_mels,
            ):
                raise ValueError(f"model {name} needs a different log-mel than the first model")
        self.settings = settings
        self.models = models
        self.device = device
        self.config = first
        self.frontend = NumpyLogMel(first)
        self.fingerprint = _fingerprint(settings, models)
        # ONNX Runtime networks run side by side, one thread each (they release the GIL): on
        # 2 cores that beat one network after the other on 2 intra-op threads by ~10 % for a
        # 3-minute track and a single region alike (no barrier between the two threads).
        # PyTorch networks share torch's one thread pool and run one after the other.
        self._pool: ThreadPoolExecutor | None = None
        if len(models) > 1 and all(_is_onnx(m) for m in models.values()):
            self._pool = ThreadPoolExecutor(len(models), thread_name_prefix="musicnn")

    @classmethod
    def load(cls, settings: TaggerSettings, *, device: str = "cpu") -> Tagger:
        """Load the networks ``settings.models`` names (shipped weights; never downloads).

        With ``runtime = "auto"`` a network runs in ONNX Runtime when onnxruntime imports and
        the shipped ``.onnx`` export matches its weights, else in PyTorch.

        Raises:
            ModelLoadError: weights missing or unreadable, or ``runtime = "onnx"`` without
                onnxruntime or a matching export.
        """
        from engine.models.musicnn_onnx import load_onnx, onnx_path

        models: dict[str, Network] = {}
        for name in settings.models:
            weights = _resolve(name)
            net: Network | None = None
            if settings.runtime != "torch" and device == "cpu":
                net = load_onnx(weights, threads=onnx_threads(settings))
                if net is None and settings.runtime == "onnx":
                    raise ModelLoadError(
                        f"tagger.runtime='onnx': no usable ONNX export of {name} (needs "
                        f"`pip install onnxruntime` and {onnx_path(weights)} exported from "
                        f"{weights} by scripts/export_musicnn_onnx.py)"
                    )
            if net is None:
                from engine.extras import require

                require("neural", f"the tagger's torch runtime ({name})", ("torch", "safetensors"))
                from engine.models.musicnn import Musicnn

                use_torch_threads(settings.threads)
                net = Musicnn.from_pretrained(weights, device=device)
            models[name] = net
        log.debug(
            "tagger runtimes: %s",
            {n: type(m).__name__ for n, m in models.items()},
        )
        return cls(settings, models, device=device)

    @property
    def sr(self) -> int:
        """The sample rate (Hz) :meth:`tag` expects."""
        return self.config.sr

    def close(self) -> None:
        """Stop the threads that run the networks side by side (the tagger stays usable: it
        then runs them one after the other)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def warm_up(self) -> None:
        """Run one silent patch through every network (first-call allocations and kernel
        selection happen here instead of in the first request), as a track's region and, where
        it hears another number of patches, as a region asked for alone (10 s)."""
        self.tag([np.zeros(self.config.patch_frames * self.config.hop_length, np.float32)])
        if self.settings.max_patches_alone != self.settings.max_patches:
            region = np.zeros(10 * self.sr, np.float32)
            self.tag([region], max_patches=self.settings.max_patches_alone)

    def tag(
        self, regions: Sequence[np.ndarray], *, max_patches: int | None = None
    ) -> list[TagResult]:
        """Tag regions of mono audio at :attr:`sr` (16 kHz).

        Every region of F log-mel frames is cut into ``round(F / 187)`` 3 s patches spread
        evenly from its start to its end (a 10 s region gives 3 patches, a 3 min one 60;
        at most ``max_patches`` when that is set, ``settings.max_patches`` when it is None);
        patches of all regions run through each model in batches of
        ``settings.batch_patches``. Regions shorter than one patch are
        zero-padded to one patch and flagged ``"short_region_padded"``.

        Args:
            regions: ``[samples]`` float arrays, mono, at 16 kHz.
            max_patches: most patches per region for this call (0: all); None for the
                settings'.

        Returns:
            One :class:`TagResult` per region, in order.

        Raises:
            AudioError: a region is not 1-D, is empty, or holds NaN/inf.
        """
        if not regions:
            return []
        patches, owners, flags = [], [], []
        most = self.settings.max_patches if max_patches is None else max_patches
        for i, audio in enumerate(regions):
            p, padded = self._patches(audio, index=i, max_patches=most)
            patches.append(p)
            owners.extend([i] * p.shape[0])
            flags.append((SHORT_REGION_FLAG,) if padded else ())
        batch = np.concatenate(patches)  # [P, patch_frames, n_mels]
        owner = np.asarray(owners)
        counts = np.maximum(np.bincount(owner, minlength=len(regions)), 1)[:, None]
        scores: dict[str, np.ndarray] = {}
        step = self.settings.batch_patches

        def run(model: Network) -> np.ndarray:
            parts = [self._logits(model, batch[s : s + step]) for s in range(0, len(batch), step)]
            return np.concatenate(parts)  # [P, n_tags]

        pool = self._pool  # read once: close() may set it to None from another thread
        futures: dict[str, Future[np.ndarray]] = {}
        if pool is not None:
            try:
                futures = {name: pool.submit(run, m) for name, m in self.models.items()}
            except RuntimeError:  # the pool was shut down between the read and the submit
                futures = {}
        outputs = {
            name: futures[name].result() if name in futures else run(m)
            for name, m in self.models.items()
        }
        for name, model in self.models.items():
            probs = 1.0 / (1.0 + np.exp(-outputs[name].astype(np.float64)))
            sums = np.zeros((len(regions), probs.shape[1]))
            np.add.at(sums, owner, probs)
            mean = sums / counts
            for j, tag in enumerate(model.tags):
                scores[f"{name}/{tag}"] = mean[:, j]
        n_per_region = counts[:, 0].tolist()
        return [
            self.interpret(
                {k: float(v[i]) for k, v in scores.items()},
                flags=flags[i],
                patches=int(n_per_region[i]),
            )
            for i in range(len(regions))
        ]

    def _logits(self, model: Network, patches: np.ndarray) -> np.ndarray:
        """``[B, T, n_mels]`` -> ``[B, n_tags]`` logits, whatever runs the model."""
        from engine.models.musicnn_onnx import OnnxMusicnn

        if isinstance(model, OnnxMusicnn):
            return model(patches)
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(patches)).to(self.device)
            return model(x).logits.float().cpu().numpy()

    def logmel_patches(self, audio: np.ndarray) -> np.ndarray:
        """The 3 s log-mel patches :meth:`tag` feeds the models for one region.

        Returns:
            ``[patches, patch_frames, n_mels]`` float32.
        """
        return self._patches(audio, index=0, max_patches=self.settings.max_patches)[0]

    def _patches(
        self, audio: np.ndarray, *, index: int, max_patches: int
    ) -> tuple[np.ndarray, bool]:
        audio = np.asarray(audio)
        if audio.ndim != 1 or audio.size == 0:
            raise AudioError(
                f"region {index}: expected non-empty mono samples [samples], got shape "
                f"{audio.shape}"
            )
        if not np.isfinite(audio).all():
            raise AudioError(f"region {index}: samples contain NaN or inf")
        c = self.config
        patch_samples = (c.patch_frames - 1) * c.hop_length  # 186 hops: 187 centred frames
        padded = audio.size < patch_samples
        if padded:
            audio = np.pad(audio, (0, patch_samples - audio.size))
        logmel = self.frontend(audio)  # [frames, n_mels]
        # round(frames / patch) patches spread evenly from the start to the end; one patch
        # sits in the middle.
        n_patches = max(1, round(logmel.shape[0] / c.patch_frames))
        if max_patches:
            n_patches = min(n_patches, max_patches)
        last = logmel.shape[0] - c.patch_frames
        starts = np.linspace(0, last, n_patches) if n_patches > 1 else [last / 2]
        return np.stack([logmel[round(s) : round(s) + c.patch_frames] for s in starts]), padded

    def interpret(
        self, scores: dict[str, float], *, flags: tuple[str, ...] = (), patches: int = 0
    ) -> TagResult:
        """Turn source-tag scores into our fields and a vocals estimate (no network).

        Args:
            scores: ``"<model>/<tag>"`` -> mean probability in [0, 1] (missing tags count 0).
            flags: passed through to the result.
            patches: passed through to the result.
        """
        s = self.settings
        thresholds = {
            "instruments": s.instrument_threshold,
            "genres": s.genre_threshold,
            "moods": s.mood_threshold,
        }
        best: dict[str, dict[str, float]] = {f: {} for f in FIELDS}
        for (model, tag), (fld, label) in TAG_FIELDS.items():
            value = scores.get(f"{model}/{tag}")
            if value is not None:
                best[fld][label] = max(best[fld].get(label, 0.0), value)
        fields_out = {
            fld: tuple(
                Tag(label, round(score, 4))
                for label, score in sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))
                if score >= thresholds[fld]
            )[: s.max_tags]
            for fld, labels in best.items()
        }
        return TagResult(
            vocals=self.vocals(scores),
            instruments=fields_out["instruments"],
            genres=fields_out["genres"],
            moods=fields_out["moods"],
            flags=flags,
            patches=patches,
            scores=dict(scores),
        )

    def vocals(self, scores: dict[str, float]) -> VocalsEstimate:
        """The none / male / female estimate from source-tag scores (see the module doc)."""
        ev = vocal_evidence(scores)
        s = self.settings
        margin = max(
            ev["present"] - ev["absent"] - s.vocal_threshold, ev["choir"] - s.choir_threshold
        )
        p_vocals = _sigmoid(s.sharpness * margin)
        p_female = _sigmoid(s.sharpness * (ev["female"] - ev["male"] - s.female_threshold))
        probs = (1.0 - p_vocals, p_vocals * (1.0 - p_female), p_vocals * p_female)
        label = "none" if p_vocals < 0.5 else "female" if p_female >= 0.5 else "male"
        return VocalsEstimate(label, tuple(round(p, 4) for p in probs))  # type: ignore[arg-type]


def vocal_evidence(scores: dict[str, float]) -> dict[str, float]:
    """Max score per vocal role: ``present``, ``absent``, ``choir``, ``female``, ``male``.

    A role none of whose tags was scored counts 0; ``female``/``male`` come from the
    ``*_fallback`` (MTT) tags when no MSD gender tag was scored.
    """
    ev: dict[str, float] = {}
    found: set[str] = set()
    for (model, tag), role in VOCAL_ROLES.items():
        key = f"{model}/{tag}"
        if key in scores:
            ev[role] = max(ev.get(role, 0.0), scores[key])
            found.add(role)
    out = {role: ev.get(role, 0.0) for role in ("present", "absent", "choir", "female", "male")}
    if not {"female", "male"} & found:
        out["female"] = ev.get("female_fallback", 0.0)
        out["male"] = ev.get("male_fallback", 0.0)
    return out


def table_coverage(model: str, tags: Sequence[str]) -> list[str]:
    """Tags of ``model`` that neither table maps nor :data:`IGNORED_TAGS` lists (should be none)."""
    return [
        t
        for t in tags
        if (model, t) not in TAG_FIELDS
        and (model, t) not in VOCAL_ROLES
        and (model, t) not in IGNORED_TAGS
    ]


def _is_onnx(model: object) -> bool:
    from engine.models.musicnn_onnx import OnnxMusicnn

    return isinstance(model, OnnxMusicnn)


def onnx_threads(settings: TaggerSettings) -> int:
    """Intra-op threads of each ONNX Runtime network: ``settings.threads``, or when that is 0
    the cores shared out between the networks, which run side by side (at least one each)."""
    if settings.threads:
        return settings.threads
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may use (containers)
    except AttributeError:  # not on macOS or Windows
        cores = os.cpu_count() or 1
    return max(1, cores // len(settings.models))


def _fingerprint(settings: TaggerSettings, models: dict[str, Network]) -> str:
    from engine.models.musicnn_onnx import OnnxMusicnn

    h = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
    for name, model in models.items():
        h.update(name.encode())
        if isinstance(model, OnnxMusicnn):
            h.update(model.digest.encode())
            continue
        for key, value in sorted(model.state_dict().items()):
            h.update(key.encode())
            _hash_tensors(h, value)
    return h.hexdigest()[:16]


def _hash_tensors(h: hashlib._Hash, value: object) -> None:
    """Feed a state-dict value's numbers to ``h`` (quantised layers keep tuples of tensors)."""
    import torch

    if isinstance(value, tuple | list):
        for item in value:
            _hash_tensors(h, item)
    elif isinstance(value, torch.Tensor):
        t = value.dequantize() if value.is_quantized else value
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    else:
        h.update(repr(value).encode())


def _resolve(name: str) -> Path:
    """The weights file of a model name, without importing torch."""
    from engine.models.musicnn_onnx import resolve_weights

    return resolve_weights(name)


def prefer_passive_threads() -> None:
    """Let OpenMP worker threads sleep instead of spin while they wait (for torch).

    Spinning workers keep both cores of a 2-core machine busy even between ops; when a DAW
    holds a core they fight it and tagging slows down 2-3x. libgomp reads the setting once,
    when torch is first imported, so call this before that (the entry points do); an explicit
    ``OMP_WAIT_POLICY`` in the environment wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "torch" in sys.modules and os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE":
        log.debug("torch is already imported: OMP_WAIT_POLICY=PASSIVE may not apply")


def single_blas_thread() -> None:
    """Limit numpy's BLAS (OpenBLAS) to one thread for the rest of the process.

    The lite pipeline's matrix products are small (a few ms); OpenBLAS's workers busy-wait
    between them and take the core that the tagger's networks, running on a worker thread at
    the same time, need. Measured on 2 cores (a 3-minute track, one patch per region):
    key/tempo/loudness 1.02 s and tags 1.15 s took 1.79 s side by side with OpenBLAS's
    default threads, 1.17 s with one.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def use_torch_threads(threads: int) -> None:
    """Set torch's intra-op thread count (0 leaves torch's default: one per core)."""
    prefer_passive_threads()
    import torch

    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))
