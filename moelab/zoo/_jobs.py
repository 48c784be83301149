"""Training jobs of a zoo build and the pool that runs them, one job per core.

A build is a small graph of jobs: each zoo's base is pre-trained first, then every variant is
fine-tuned from the base's saved weights. The jobs of several zoos share one pool, so both
built-in zoos train at once on two cores. A job reads all it needs from its arguments and from
the staging folder (the variants load the base from disk), so the bytes it writes do not
depend on which process runs it or on how many jobs run beside it: ``jobs=1`` runs the same
code in this process.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from moelab.zoo._recipes import ZooData, get_recipe
from moelab.zoo._spec import ZooSpec
from moelab.zoo._training import train_steps, training_threads

__all__ = ["BASE", "JobResult", "TrainJob", "model_folder", "run_jobs", "variant_jobs"]

BASE = "base"


def model_folder(folder: Path, model: str) -> Path:
    """Where a zoo folder keeps ``"base"`` or a variant."""
    return folder / (BASE if model == BASE else f"variants/{model}")


@dataclass(frozen=True)
class TrainJob:
    """Pre-train a zoo's base (``model == "base"``) or fine-tune one variant from it.

    The job trains, evaluates the model on every variant's held-out data, and saves it with
    ``save_pretrained`` into its place in ``folder``.
    """

    spec: ZooSpec
    folder: Path
    model: str
    data: ZooData
    threads: int

    @property
    def steps(self) -> int:
        """Optimizer steps of the job (what the progress bar counts)."""
        return self.spec.pretrain_steps if self.model == BASE else self.spec.finetune_steps


@dataclass(frozen=True)
class JobResult:
    """What a finished job reports back: its loss curve and its evaluation."""

    zoo: str
    model: str
    curve: list[float]
    evaluation: dict[str, float]


def _initial_model(job: TrainJob, recipe) -> torch.nn.Module:
    if job.model != BASE:  # every variant starts from the same, saved base weights
        return recipe.model_class.from_pretrained(model_folder(job.folder, BASE))
    # Seed the initialisation without disturbing the caller's global random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(job.spec.seed)
        return recipe.make_model(job.spec, job.data.tokenizer)


def run_job(job: TrainJob, on_step: Callable[[float], None] | None = None) -> JobResult:
    """Train, evaluate and save one model of a zoo; see :class:`TrainJob`."""
    recipe = get_recipe(job.spec.family)
    variant = None if job.model == BASE else job.model
    with training_threads(job.threads):
        model = _initial_model(job, recipe)
        curve = train_steps(
            model,
            recipe.batches(job.spec, job.data, variant),
            recipe.loss,
            steps=job.steps,
            lr=job.spec.lr if variant is None else job.spec.finetune_lr,
            warmup_steps=job.spec.warmup_steps,
            on_step=on_step,
        )
        evaluation = recipe.evaluate(job.spec, model, job.data)
    model.save_pretrained(model_folder(job.folder, job.model))
    return JobResult(job.spec.name, job.model, curve, evaluation)


# Worker side of the pool: each step's loss goes to the parent's progress bar through a queue.
_STEPS: multiprocessing.Queue | None = None


def _init_worker(steps: multiprocessing.Queue) -> None:
    global _STEPS
    _STEPS = steps


def _run_in_worker(job: TrainJob) -> JobResult:
    return run_job(job, on_step=_STEPS.put if _STEPS is not None else None)


def variant_jobs(base: TrainJob) -> list[TrainJob]:
    return [
        TrainJob(base.spec, base.folder, variant, base.data, base.threads)
        for variant in base.spec.variants
    ]


def _longest_first(jobs: Sequence[TrainJob]) -> list[TrainJob]:
    # Longest jobs first keeps the two cores busy until the end (LPT scheduling).
    return sorted(jobs, key=lambda job: -job.steps * job.spec.batch_size * job.spec.seq_len)


def _tick(progress: tqdm, loss: float) -> None:
    progress.update(1)
    progress.set_postfix(loss=f"{loss:.3f}", refresh=False)


def run_jobs(bases: Sequence[TrainJob], jobs: int, progress: tqdm) -> list[JobResult]:
    """Run each base job, then its variants, on ``jobs`` processes; return every result.

    Parameters
    ----------
    bases : sequence of TrainJob
        One base job per zoo; its variants are scheduled when it finishes.
    jobs : int
        Processes to train in; 1 trains in this process.
    progress : tqdm
        Advanced by one per optimizer step of any job.
    """
    if jobs <= 1:
        results = []
        for base in bases:
            for job in (base, *variant_jobs(base)):
                progress.set_description(f"{job.spec.name}: {job.model}")
                results.append(run_job(job, on_step=lambda loss: _tick(progress, loss)))
        return results
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch has threads
    steps = context.Queue()
    results: list[JobResult] = []
    with ProcessPoolExecutor(jobs, context, initializer=_init_worker, initargs=(steps,)) as pool:
        running: dict[Future, TrainJob] = {
            pool.submit(_run_in_worker, job): job for job in _longest_first(bases)
        }
        progress.set_description(f"{len(running)} zoo(s) on {jobs} processes")
        try:
            while running:
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(steps, progress)
                for future in done:
                    job = running.pop(future)
                    results.append(future.result())  # re-raises a worker's exception here
                    if job.model == BASE:
                        variants = _longest_first(variant_jobs(job))
                        running.update({pool.submit(_run_in_worker, v): v for v in variants})
        except BaseException:
            # Let running jobs finish (they write into the staging folder the caller removes)
            # but start no new one.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        _drain(steps, progress)
    return results


def _drain(steps: multiprocessing.Queue, progress: tqdm) -> None:
    while True:
        try:
            _tick(progress, steps.get_nowait())
        except queue_module.Empty:
            return
