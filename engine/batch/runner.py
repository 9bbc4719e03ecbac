"""Batch runners: a local process pool (the default) and Ray Data, around one worker function.

:func:`run_batch` skips the jobs the ledger holds as finished, hands the rest to a runner,
records every outcome in the ledger as it arrives, then streams the ledger's outcomes, file by
file, into the Parquet table (row groups) and the summary's counts: the driver never holds
more than one row group, so its memory does not grow with the catalogue, and an interrupted
or resumed batch still leaves one table of what finished, each job once.

- Local: ``workers`` spawned processes, each building one :class:`~engine.batch.worker.Worker`
  (the preset loads once per process). A process that dies (a crash in a decoder, the OOM
  killer) fails the jobs it held; a new pool takes the rest.
- Ray: a Ray Data pipeline of two stages, ``map_batches`` each: a CPU *probe* stage reads
  every file's header (unreadable, empty or unsupported files fail there, before they reach
  a model) and a *model* stage on an actor pool, one Worker per actor, ``num_gpus`` per actor
  for neural presets. Ray is imported only here, only when chosen.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.backends.base import Progress, no_progress
from engine.batch import summary, table
from engine.batch.jobs import Job
from engine.batch.ledger import Ledger
from engine.batch.worker import Outcome, Worker, WorkerConfig, failed
from engine.errors import EngineError

log = logging.getLogger(__name__)

OnOutcome = Callable[[Outcome], None]

PROBE_CPUS = 0.1
"""CPUs a Ray probe task asks for (it only reads a header)."""
ACTOR_CPUS = 0.9
"""CPUs a Ray model actor asks for: with the probe tasks, N actors fit on N cores."""


@dataclass(frozen=True)
class BatchReport:
    """What a batch did.

    Attributes:
        done: jobs annotated by this run.
        skipped: jobs already finished by an earlier run (the ledger's).
        failed: jobs that failed in this run.
        errors: ``(job, error)`` of each failure, in the order they came.
        table: the Parquet table (all finished jobs of the input, this run's and earlier).
        summary: the summary folder, None when nothing was annotated.
        interrupted: True when Ctrl-C stopped the run (what finished is recorded).
    """

    done: int
    skipped: int
    failed: int
    errors: tuple[tuple[str, str], ...]
    table: Path
    summary: Path | None
    interrupted: bool = False


def default_workers() -> int:
    """All the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_batch(
    jobs: Sequence[Job],
    config: WorkerConfig,
    *,
    workers: int | None = None,
    ray: bool = False,
    ray_address: str | None = None,
    gpus_per_worker: float = 0.0,
    plots: bool = True,
    progress: Progress = no_progress,
) -> BatchReport:
    """Annotate the jobs not finished yet; write the table and the summary under ``config.out``.

    Args:
        jobs: what to annotate (duplicates are run once).
        config: the workers' configuration; ``config.out`` is the output folder.
        workers: processes (local) or actors (Ray); None for all cores (of the cluster for Ray).
        ray: run on Ray Data instead of the local pool.
        ray_address: the cluster to join (``"auto"``, ``"ray://host:10001"``); None starts a
            local Ray (or uses the one this process already started).
        gpus_per_worker: GPUs per Ray actor (fractions share a GPU).
        plots: write the summary folder with its PNG plots.
        progress: called with ``("files", finished, to_do)`` after each job.

    Raises:
        InvalidRequest: ``workers`` below 1 or ``gpus_per_worker`` negative.
    """
    from engine.errors import InvalidRequest

    if workers is not None and workers < 1:
        raise InvalidRequest(f"workers must be at least 1, got {workers}")
    if gpus_per_worker < 0:
        raise InvalidRequest(f"gpus_per_worker must be >= 0, got {gpus_per_worker}")
    check_output(config.out)
    _import_writers(plots=plots)
    if ray:
        connect_ray(ray_address)
    jobs = list({j.key: j for j in jobs}.values())
    preset = config.preset.name
    ledger = Ledger(config.out)
    errors: list[tuple[str, str]] = []
    interrupted = False
    try:
        finished = ledger.done(jobs, preset=preset)
        todo = [j for j in jobs if j.key not in finished]
        log.info("%d jobs: %d finished before, %d to do", len(jobs), len(finished), len(todo))
        progress("files", 0, len(todo))
        count = 0

        def on_outcome(outcome: Outcome) -> None:
            nonlocal count
            ledger.record(outcome, preset=preset)
            if not outcome.ok:
                errors.append((outcome.job.key, outcome.error))
            count += 1
            progress("files", count, len(todo))

        try:
            if todo and ray:
                run_ray(
                    todo,
                    config,
                    workers=workers,
                    gpus_per_worker=gpus_per_worker,
                    on_outcome=on_outcome,
                )
            elif todo:
                run_local(todo, config, workers=workers or default_workers(), on_outcome=on_outcome)
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted: %d of %d jobs finished and recorded", count, len(todo))
        tally = summary.Tally()
        with table.TableWriter(Path(config.out) / table.TABLE_NAME) as writer:
            for row in table.ordered_rows(ledger.iter_outcomes(jobs)):
                writer.add(row)
                tally.add(row)
    finally:
        ledger.close()
    path = writer.path
    folder = summary.write(tally.summary(), config.out) if plots and writer.rows else None
    return BatchReport(
        done=count - len(errors),
        skipped=len(finished),
        failed=len(errors),
        errors=tuple(errors),
        table=path,
        summary=folder,
        interrupted=interrupted,
    )


def _import_writers(*, plots: bool) -> None:
    """Import the table's and the plots' libraries before the work, not after hours of it: a
    missing one fails at once, and the driver's memory is paid up front, not at the end
    (pyarrow imports pandas on its first conversion: an empty table pays for that now)."""
    try:
        import pyarrow.parquet  # noqa: F401

        table.to_table([])

        if plots:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot
    except ImportError as exc:
        raise EngineError(f"batch outputs need {exc.name}: pip install {exc.name}") from None


def check_output(out: str | os.PathLike[str]) -> None:
    """Fail early, in one line, when the output folder cannot be created or written.

    Raises:
        EngineError: naming the folder and the reason.
    """
    import tempfile

    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise EngineError(
            f"output folder {str(out)!r} is not writable ({exc.strerror or exc}); "
            "choose another --out"
        ) from None


# -- local process pool ---------------------------------------------------------------------

_WORKER: Worker | None = None


def _init_process(config: WorkerConfig) -> None:
    """Pool initializer: Ctrl-C is the parent's to handle; build this process's Worker."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = Worker(config)


def _run_in_process(job: Job) -> Outcome:
    assert _WORKER is not None, "pool initializer did not run"
    return _WORKER.run(job)


def run_local(
    jobs: Sequence[Job], config: WorkerConfig, *, workers: int, on_outcome: OnOutcome
) -> None:
    """Run the jobs on ``workers`` processes (in this process when one is enough).

    Each process gets ``cores // workers`` torch threads so the pool does not oversubscribe.
    On Ctrl-C, jobs not started are dropped, the running ones finish and are recorded, then
    KeyboardInterrupt propagates (a second Ctrl-C stops waiting for them).
    """
    if workers == 1 or len(jobs) == 1:
        worker = Worker(config)
        try:
            for job in jobs:
                on_outcome(worker.run(job))
        finally:
            worker.close()
        return
    if config.threads is None:
        config = replace(config, threads=max(1, default_workers() // workers))
    if config.store is not None:
        from engine.store import Store

        Store(config.store).close()  # created here once, not by processes racing to create it
    remaining: Iterator[Job] = iter(jobs)
    while True:
        broken = _run_pool(remaining, config, workers=workers, on_outcome=on_outcome)
        if not broken:
            return
        for job in broken:
            msg = "the worker process died while annotating it (a crash, or out of memory)"
            on_outcome(failed(job, msg, preset=config.preset.name))


def _run_pool(
    jobs: Iterator[Job], config: WorkerConfig, *, workers: int, on_outcome: OnOutcome
) -> list[Job]:
    """Run jobs from the iterator on one pool until it runs out (returns []) or a process dies
    (returns the jobs the pool held; the iterator keeps the rest)."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a parent holding threads or torch
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_process, initargs=(config,)
    )
    pending: dict[Future[Outcome], Job] = {}
    finished = 0

    def fill() -> None:
        while len(pending) < 2 * workers:
            job = next(jobs, None)
            if job is None:
                return
            pending[pool.submit(_run_in_process, job)] = job

    try:
        fill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                job = pending.pop(f)
                try:
                    outcome = f.result()
                except BrokenProcessPool as exc:
                    if not finished:
                        raise EngineError(
                            f"batch worker processes could not start or died at once ({exc}); "
                            "run with --workers 1 to see the error"
                        ) from exc
                    return [job, *pending.values()]
                finished += 1
                on_outcome(outcome)
            fill()
    except KeyboardInterrupt:
        running = _drain(pending, on_outcome)
        pool.shutdown(wait=not running, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return []


def _drain(pending: dict[Future[Outcome], Job], on_outcome: OnOutcome) -> bool:
    """After Ctrl-C: cancel what has not started, record what finishes. Returns True when a
    second Ctrl-C cut the wait short."""
    for f in list(pending):
        if f.cancel():
            del pending[f]
    try:
        for f in list(pending):
            try:
                on_outcome(f.result())
            except BrokenProcessPool:
                return False
    except KeyboardInterrupt:
        return True
    return False


# -- Ray Data ---------------------------------------------------------------------------------


def ray_runtime_env() -> dict[str, Any]:
    """Runtime env for a local Ray started by this process: workers import this checkout's
    ``engine`` (a cluster's nodes have sonicverse installed instead)."""
    import engine

    root = str(Path(engine.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def probe_batch(batch: dict[str, Any], *, preset: str) -> dict[str, Any]:
    """Ray probe stage: read each job's header on a CPU; a file that cannot be read fails
    here with its error (``outcome`` set), the others pass on with ``outcome`` empty."""
    import numpy as np

    from engine import audio
    from engine.errors import EngineError

    outcomes = []
    for text in batch["job"]:
        job = Job.from_json(str(text))
        try:
            audio.info(job.audio)
            outcomes.append("")
        except EngineError as exc:
            outcomes.append(failed(job, str(exc), preset=preset).to_json())
    return {"job": batch["job"], "outcome": np.array(outcomes, dtype=object)}


class AnnotateActor:
    """Ray model stage: one :class:`Worker` per actor, built when the actor starts."""

    def __init__(self, config: WorkerConfig) -> None:
        self.worker = Worker(config)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out = [
            str(o) if o else self.worker.run(Job.from_json(str(j))).to_json()
            for j, o in zip(batch["job"], batch["outcome"], strict=True)
        ]
        return {"outcome": np.array(out, dtype=object)}


def connect_ray(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (None: start a local Ray), unless this process
    already has.

    Raises:
        EngineError: one line naming the address and what to do, when no cluster answers
            there or Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise EngineError(
            "--ray needs Ray: pip install 'sonicverse-studio[batch]', or run without --ray"
        ) from None
    if ray.is_initialized():
        return
    if address is None:
        ray.init(runtime_env=ray_runtime_env(), logging_level=logging.WARNING)
        return
    env = os.environ.get("RAY_ADDRESS")
    where = repr(address) + (f" (RAY_ADDRESS={env})" if address == "auto" and env else "")
    try:
        _check_reachable(_resolve(address))
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as exc:
        log.debug("ray.init(address=%r): %s", address, exc)
        raise EngineError(
            f"no Ray cluster answers at {where}; start one with 'ray start --head' "
            "(and 'ray start --address=HEAD_IP:6379' on each worker node), "
            "or run without --ray for the local process pool"
        ) from None


def _resolve(address: str) -> str:
    """``auto`` as Ray resolves it (``RAY_ADDRESS``, the last cluster started here, a running
    one); raises ConnectionError when there is none. Other addresses are returned as given."""
    if address != "auto":
        return address
    try:
        from ray._private.services import get_ray_address_from_environment
    except ImportError:  # a Ray without that helper: leave 'auto' to ray.init
        return address
    return get_ray_address_from_environment(address, None) or address


def _check_reachable(address: str, *, timeout_s: float = 5.0) -> None:
    """Raise ConnectionError when nothing listens at a ``host:port`` or ``ray://host:port``
    address (Ray itself waits minutes there); ``auto`` is left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"{address}: {exc}") from None


def prepare_node(config: WorkerConfig, sample: str | None) -> str:
    """On one node, before its actors start: check that ``sample`` (an audio path the driver
    sees) is there and that the preset's backend has its packages, and create the annotation
    store once (actors starting together would race
    to create it). Returns what is wrong, or an empty string."""
    from engine.backends import require_extra

    if sample is not None and not os.path.isfile(sample):
        return f"audio file {sample} is not there"
    require_extra(config.preset.backend)
    if config.store is not None:
        from engine.store import Store

        Store(config.store).close()
    return ""


def prepare_nodes(config: WorkerConfig, *, sample: str | None) -> None:
    """Run :func:`prepare_node` on every live node of the cluster, before any work.

    Raises:
        EngineError: one line naming the node and what to do: sonicverse or the backend's
            packages not importable there, the audio not at the same path, or the store not
            usable.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(prepare_node)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [
        task.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(config, sample)
        for n in nodes
    ]
    for node, ref in zip(nodes, refs, strict=True):
        where = f"Ray node {node.get('NodeManagerAddress', node['NodeID'])}"
        try:
            problem = ray.get(ref)
        except ray.exceptions.RayError as exc:
            text = str(exc)
            if "No module named 'engine'" in text or "No module named 'sonicverse" in text:
                raise EngineError(
                    f"{where} cannot import sonicverse: install it on every node "
                    "(pip install 'sonicverse-studio[batch]'), the same version as here"
                ) from None
            last = next((t for t in reversed(text.splitlines()) if t.strip()), type(exc).__name__)
            message = re.sub(r"^[\w.]+(Error|Extra|Exception): ", "", last.strip())
            raise EngineError(f"{where}: {message}") from None
        if problem:
            raise EngineError(
                f"{where}: {problem}; jobs travel as paths, so mount the audio at the same "
                "path on every node (NFS, s3fs, gcsfuse)"
            )


def run_ray(
    jobs: Sequence[Job],
    config: WorkerConfig,
    *,
    workers: int | None,
    gpus_per_worker: float,
    on_outcome: OnOutcome,
) -> None:
    """Run the jobs on Ray Data (see the module docstring); outcomes arrive as they finish.
    Joins a local Ray when :func:`connect_ray` has not been called."""
    import ray

    connect_ray(None)
    prepare_nodes(config, sample=next((j.audio for j in jobs if os.path.isfile(j.audio)), None))
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        if gpus_per_worker > 0:
            gpus = ray.cluster_resources().get("GPU", 0)
            workers = max(1, min(workers, int(gpus / gpus_per_worker)))
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ds: Any = ray.data.from_items(
        [{"job": j.to_json()} for j in jobs],
        override_num_blocks=min(len(jobs), max(16 * workers, 200)),
    )
    ds = ds.map_batches(
        probe_batch, batch_size=1, num_cpus=PROBE_CPUS, fn_kwargs={"preset": config.preset.name}
    )
    ds = ds.map_batches(
        AnnotateActor,
        fn_constructor_kwargs={"config": config},
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_size=1,
        num_cpus=ACTOR_CPUS,
        num_gpus=gpus_per_worker or None,
    )
    for row in ds.iter_rows():
        on_outcome(Outcome.from_json(str(row["outcome"])))
