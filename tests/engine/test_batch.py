"""Batch annotation of a folder with corrupt files among good ones: local pool, ledger, Ray."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine import audio, presets
from engine.batch import jobs as batch_jobs
from engine.batch.runner import run_batch
from engine.batch.worker import Worker, WorkerConfig
from engine.cli import main
from engine.errors import EngineError, InvalidRequest
from engine.presets import Preset
from tests.synth import click_track, progression

GOOD = ("a_c_major.wav", "b_a_minor.flac", "sub/c_g_major.wav", "sub/d_e_minor.ogg")
BAD = ("broken.wav", "empty.flac", "sub/truncated.wav")


def _clip(tonic: str, mode: str, *, sr: int = 22050) -> np.ndarray:
    y = progression(tonic, mode, sr=sr, chord_s=0.75, repeats=1)
    return y + click_track(120.0, y.size / sr, sr=sr)[: y.size]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 3 s files in three containers, and three corrupt ones."""
    root = tmp_path_factory.mktemp("catalogue")
    (root / "sub").mkdir()
    for name, (tonic, mode) in zip(
        GOOD, [("C", "major"), ("A", "minor"), ("G", "major"), ("E", "minor")], strict=True
    ):
        audio.write(root / name, _clip(tonic, mode), sr=22050)
    (root / "broken.wav").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "empty.flac").write_bytes(b"")
    whole = (root / "a_c_major.wav").read_bytes()
    (root / "sub/truncated.wav").write_bytes(whole[: len(whole) // 3])
    (root / "notes.txt").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def preset() -> Preset:
    """lite without the tagger: batch mechanics do not need tags."""
    p = presets.load("lite")
    return replace(p, options=replace(p.options, tag=False))


def _config(preset: Preset, out: Path, root: Path, **kw: object) -> WorkerConfig:
    return WorkerConfig(
        preset=preset, store=str(out / "store.sqlite3"), out=str(out), root=str(root), **kw
    )  # type: ignore[arg-type]


def _rows(out: Path) -> list[dict[str, object]]:
    return pq.read_table(out / "annotations.parquet").to_pylist()


@pytest.fixture(scope="module")
def local_out(catalogue: Path, preset: Preset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalogue annotated once by a pool of two processes."""
    out = tmp_path_factory.mktemp("local")
    report = run_batch(batch_jobs.discover(catalogue), _config(preset, out, catalogue), workers=2)
    assert (report.done, report.skipped, report.failed) == (len(GOOD), 0, len(BAD))
    return out


def test_discover_finds_audio_only(catalogue: Path) -> None:
    names = [
        Path(j.audio).relative_to(catalogue).as_posix() for j in batch_jobs.discover(catalogue)
    ]
    assert sorted(names) == sorted(GOOD + BAD)


def test_every_good_file_annotated_every_bad_reported(catalogue: Path, local_out: Path) -> None:
    rows = _rows(local_out)
    good = [r for r in rows if r["error"] is None]
    bad = [r for r in rows if r["error"] is not None]
    assert sorted({Path(r["file"]).relative_to(catalogue).as_posix() for r in good}) == sorted(GOOD)
    assert sorted(Path(r["file"]).relative_to(catalogue).as_posix() for r in bad) == sorted(BAD)
    assert all(r["key"] and r["tempo_bpm"] and r["preset"] == "lite" for r in good)
    by_file = {Path(r["file"]).name: r["key"] for r in good}
    assert by_file["a_c_major.wav"] == "C major" and by_file["b_a_minor.flac"] == "A minor"
    assert any("empty" in r["error"] for r in bad)
    schema = pq.read_schema(local_out / "annotations.parquet")
    assert str(schema.field("tempo_bpm").type) == "double"
    assert str(schema.field("instruments").type) == "list<element: string>"
    for plot in ("keys", "tempo", "genres", "vocals"):
        assert (local_out / "summary" / f"{plot}.png").stat().st_size > 1000
    summary = json.loads((local_out / "summary" / "summary.json").read_text())
    assert (summary["files"], summary["failed"]) == (len(GOOD), len(BAD))


def test_rerun_annotates_nothing(
    catalogue: Path, local_out: Path, preset: Preset, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _rows(local_out)
    ran: list[str] = []
    real = Worker.run
    monkeypatch.setattr(Worker, "run", lambda self, job: ran.append(job.audio) or real(self, job))
    report = run_batch(
        batch_jobs.discover(catalogue), _config(preset, local_out, catalogue), workers=1
    )
    assert (report.done, report.skipped, report.failed) == (0, len(GOOD), len(BAD))
    assert sorted(Path(p).relative_to(catalogue).as_posix() for p in ran) == sorted(BAD)
    assert _rows(local_out) == before


def test_interrupt_keeps_what_finished(
    catalogue: Path, preset: Preset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = [j for j in batch_jobs.discover(catalogue) if Path(j.audio).name in str(GOOD)]
    real = Worker.run
    calls = 0

    def run_then_interrupt(self: Worker, job: batch_jobs.Job) -> object:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return real(self, job)

    monkeypatch.setattr(Worker, "run", run_then_interrupt)
    report = run_batch(jobs, _config(preset, tmp_path, catalogue), workers=1)
    assert report.interrupted and report.done == 2
    assert len({r["file"] for r in _rows(tmp_path)}) == 2
    monkeypatch.setattr(Worker, "run", real)
    report = run_batch(jobs, _config(preset, tmp_path, catalogue), workers=1)
    assert (report.done, report.skipped, report.failed) == (2, 2, 0)


def test_manifest_spans_and_unknown_keys(catalogue: Path, preset: Preset, tmp_path: Path) -> None:
    manifest = catalogue / "manifest.jsonl"
    rows = [
        {"audio": "a_c_major.wav", "start_s": 0.0, "end_s": 1.5, "captions": ["ignored"]},
        {"audio": "a_c_major.wav", "start_s": 1.5},
        {"audio": str(catalogue / "sub/c_g_major.wav"), "lyrics": "la"},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    try:
        jobs = batch_jobs.jobs_from(manifest)
        assert [(j.start_s, j.end_s) for j in jobs] == [(0.0, 1.5), (1.5, None), (None, None)]
        report = run_batch(
            jobs, _config(preset, tmp_path, catalogue, sidecars=("json",)), workers=1
        )
        assert (report.done, report.failed) == (3, 0)
        spans = [(r["start_s"], r["end_s"]) for r in _rows(tmp_path) if "a_c" in str(r["file"])]
        assert spans == [(0.0, 1.5), (1.5, pytest.approx(3.0, abs=0.01))]
        assert (tmp_path / "json" / "a_c_major.wav.0-1.5.json").is_file()
        assert (tmp_path / "json" / "sub" / "c_g_major.wav.json").is_file()
    finally:
        manifest.unlink()


@pytest.mark.parametrize(
    "line",
    [
        '{"start_s": 1}',
        '["a.wav"]',
        '{"audio": "a.wav", "start_s": "1"}',
        '{"audio": "a.wav", "start_s": 2, "end_s": 1}',
        "{bad",
    ],
)
def test_manifest_errors_name_the_line(tmp_path: Path, line: str) -> None:
    m = tmp_path / "m.jsonl"
    m.write_text('{"audio": "ok.wav"}\n' + line + "\n")
    with pytest.raises(InvalidRequest, match=r"m\.jsonl:2"):
        batch_jobs.read_manifest(m)


def test_cli_batch(catalogue: Path, preset: Preset, tmp_path: Path) -> None:
    toml = tmp_path / "untagged.toml"
    toml.write_text(
        (presets.shipped_presets_dir() / "lite.toml")
        .read_text()
        .replace("tag = true", "tag = false")
    )
    out = tmp_path / "out"
    argv = ["batch", str(catalogue), "--out", str(out), "--preset", str(toml), "--workers", "1"]
    argv += ["--store", str(tmp_path / "s.sqlite3"), "--sidecars", "json,jams"]
    assert main(argv) == 1  # corrupt files failed
    assert (out / "jams" / "sub" / "d_e_minor.ogg.jams").is_file()
    assert not (out / "json" / "broken.wav.json").exists()
    assert main([*argv[:2], "--out", str(out / "x"), "--sidecars", "mp3"]) == 2
    good = tmp_path / "good"
    good.mkdir()
    audio.write(good / "one.wav", _clip("D", "major"), sr=22050)
    assert main(["batch", str(good), *argv[2:]]) == 0


def test_ray_gives_the_same_rows(
    catalogue: Path, preset: Preset, local_out: Path, tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray")
    from engine.batch.runner import prepare_nodes, ray_runtime_env

    ray.init(num_cpus=2, runtime_env=ray_runtime_env(), include_dashboard=False)
    try:
        report = run_batch(
            batch_jobs.discover(catalogue),
            _config(preset, tmp_path, catalogue),
            ray=True,
            workers=2,
        )
        # every node is asked, before any work, whether it sees the driver's audio paths
        with pytest.raises(EngineError, match=r"^Ray node \S+: audio file /nowhere/a\.wav is not "):
            prepare_nodes(_config(preset, tmp_path, catalogue), sample="/nowhere/a.wav")
        (tmp_path / "empty.sqlite3").write_bytes(b"")
        empty_store = replace(
            _config(preset, tmp_path, catalogue), store=str(tmp_path / "empty.sqlite3")
        )
        with pytest.raises(EngineError, match=r"^Ray node \S+: annotation store .* 0-byte file"):
            prepare_nodes(empty_store, sample=None)
    finally:
        ray.shutdown()
    assert (report.done, report.skipped, report.failed) == (len(GOOD), 0, len(BAD))
    assert _diffs(_rows(tmp_path), _rows(local_out)) == []


def _diffs(rows: list[dict[str, object]], expected: list[dict[str, object]]) -> list[object]:
    """Cells that differ, floats within float32 rounding (summation order follows the number
    of threads per worker)."""
    assert len(rows) == len(expected)
    return [
        (a["file"], a["start_s"], k, a[k], b[k])
        for a, b in zip(rows, expected, strict=True)
        for k in a
        if a[k] != (pytest.approx(b[k], rel=1e-5) if isinstance(b[k], float) else b[k])
    ]


def test_local_path_never_imports_ray(catalogue: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from dataclasses import replace; from engine import presets; "
        "from engine.batch.cli import run; from engine.batch.jobs import discover; "
        "from engine.batch.runner import run_batch; from engine.batch.worker import WorkerConfig; "
        "p = presets.load('lite'); p = replace(p, options=replace(p.options, tag=False)); "
        f"jobs = [j for j in discover({str(catalogue)!r}) if j.audio.endswith('a_c_major.wav')]; "
        f"r = run_batch(jobs, WorkerConfig(preset=p, out={str(tmp_path)!r}), workers=1); "
        "assert r.done == 1, r; assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_table_and_summary_stream_in_file_order(tmp_path: Path) -> None:
    from engine.batch import summary, table
    from engine.batch.worker import Outcome, failed

    def row(file: str, start: float, bpm: float) -> dict[str, object]:
        return {"file": file, "start_s": start, "end_s": start + 30.0, "tempo_bpm": bpm}

    outcomes = [
        Outcome(batch_jobs.Job("/a.wav"), (row("/a.wav", 30.0, 121.0), row("/a.wav", 0.0, 99.0))),
        failed(batch_jobs.Job("/b.wav"), "bad header", preset="lite"),
        Outcome(batch_jobs.Job("/c.wav"), tuple(row("/c.wav", 30.0 * i, 140.0) for i in range(5))),
    ]
    with table.TableWriter(tmp_path / "t.parquet", row_group_rows=2) as writer:
        tally = summary.Tally()
        for r in table.ordered_rows(outcomes):
            writer.add(r)
            tally.add(r)
    f = pq.ParquetFile(tmp_path / "t.parquet")
    assert (f.metadata.num_rows, f.metadata.num_row_groups) == (8, 4)
    got = [(r["file"], r["start_s"]) for r in f.read().to_pylist()]
    assert got == [(r["file"], r["start_s"]) for r in table.rows(outcomes)]
    s = tally.summary()
    assert (s.files, s.failed, s.regions, s.minutes) == (2, 1, 7, 3.5)
    assert s.tempo_histogram == {95: 1, 120: 1, 140: 5}
    assert not (tmp_path / "t.parquet.tmp").exists()


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


def test_unwritable_output_fails_before_any_work(
    catalogue: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "out"
    assert main(["batch", str(catalogue), "--out", str(out), "--workers", "1"]) == 2
    line = _one_error_line(capsys)
    assert str(out) in line and "not writable" in line and "--out" in line


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:9", "ray://127.0.0.1:9"])
def test_ray_without_a_cluster_is_one_line(
    catalogue: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    address: str,
) -> None:
    ray = pytest.importorskip("ray")
    from ray._private.services import find_bootstrap_address, find_gcs_addresses

    if address == "auto" and (find_gcs_addresses() or find_bootstrap_address(None)):
        pytest.skip("a Ray cluster runs on this machine")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = tmp_path / "out"
    assert main(["batch", str(catalogue), "--out", str(out), "--ray", address]) == 2
    assert not ray.is_initialized()
    line = _one_error_line(capsys)
    assert f"no Ray cluster answers at {address!r}" in line
    assert "ray start --head" in line and "without --ray" in line
    assert not (out / "annotations.parquet").exists()


def test_ray_cluster_loses_a_node_mid_batch(
    catalogue: Path, preset: Preset, tmp_path: Path
) -> None:
    """Three one-CPU nodes on loopback, two actors (one per node at most); the node of one
    actor is killed after the first outcome. Ray restarts the actor on the spare node and
    retries what was lost: every job is in the table once, with the local pool's rows."""
    ray = pytest.importorskip("ray")
    from ray._private import state
    from ray.cluster_utils import Cluster

    from engine.batch.runner import ray_runtime_env

    jobs = batch_jobs.discover(catalogue) + [
        batch_jobs.Job(j.audio, float(s), float(s + 1))
        for j in batch_jobs.discover(catalogue)
        if Path(j.audio).relative_to(catalogue).as_posix() in GOOD
        for s in range(3)
    ]
    local = tmp_path / "local"
    run_batch(jobs, _config(preset, local, catalogue), workers=2)

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    out = tmp_path / "ray"
    actor_nodes: set[str] = set()
    killed: list[str] = []

    def kill_one_node(stage: str, done: int, total: int) -> None:
        if done != 1:
            return
        alive = [
            a["Address"]["NodeID"]
            for a in state.actors(actor_state_name="ALIVE").values()
            if "AnnotateActor" in a["ActorClassName"]
        ]
        actor_nodes.update(alive)
        victim = next(n for n in nodes if n.node_id in alive)
        cluster.remove_node(victim, allow_graceful=False)
        killed.append(victim.node_id)

    try:
        ray.init(address=cluster.address, runtime_env=ray_runtime_env())
        report = run_batch(
            jobs,
            _config(preset, out, catalogue),
            ray=True,
            ray_address=cluster.address,
            workers=2,
            progress=kill_one_node,
        )
        restarts = [
            a["NumRestarts"]
            for a in state.actors().values()
            if "AnnotateActor" in a["ActorClassName"]
        ]
        rerun = run_batch(jobs, _config(preset, out, catalogue), ray=True, workers=2)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert len(actor_nodes) == 2 and len(killed) == 1  # spread over two nodes, one killed
    assert sum(restarts) >= 1  # the killed node's actor came back elsewhere
    assert (report.done, report.failed) == (len(jobs) - len(BAD), len(BAD))
    assert (rerun.done, rerun.skipped) == (0, len(jobs) - len(BAD))
    rows = _rows(out)
    spans = [(r["file"], r["start_s"], r["end_s"]) for r in rows]
    assert len(spans) == len(set(spans))  # nothing duplicated
    assert _diffs(rows, _rows(local)) == []  # nothing lost, the local pool's rows
