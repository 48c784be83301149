"""Build, cache and open the zoos: :func:`load_zoo`, :func:`ensure_zoo`, :class:`Zoo`."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerFast

from labcore.atomic import atomic_dir
from labcore.registry import Registry
from moelab.corpora import Example
from moelab.zoo._jobs import BASE, JobResult, TrainJob, model_folder, run_jobs, variant_jobs
from moelab.zoo._recipes import get_recipe, package_versions, parameter_breakdown, token_stream
from moelab.zoo._spec import (
    ZOO_FORMAT_VERSION,
    ZOO_SPECS,
    ZooSpec,
    build_environment,
    get_spec,
    spec_key,
)
from moelab.zoo._store import (
    HELDOUT,
    MANIFEST,
    atomic_write_text,
    check_zoo_dir,
    file_hashes,
    zoo_dir,
    zoo_root,
)
from moelab.zoo._training import train_jobs, train_threads, training_threads

__all__ = [
    "BUILD_BUDGET_SECONDS",
    "Zoo",
    "ZooCacheWarning",
    "build_zoo",
    "build_zoos",
    "ensure_zoo",
    "load_zoo",
]


class ZooCacheWarning(UserWarning):
    """A cached zoo was unusable (partial, corrupt, unreadable) and is being rebuilt."""


@dataclass(frozen=True)
class Zoo:
    """A built zoo on disk: one base model, its fine-tuned variants, tokenizer and manifest.

    Attributes
    ----------
    name : str
        Zoo name, e.g. ``"mixtral-tiny"``.
    root : Path
        The zoo's folder.
    base_path : Path
        ``save_pretrained`` folder of the base model.
    variant_paths : dict of str to Path
        Folder of each variant, keyed by its domain or task.
    tokenizer_path : Path
        Folder that ``AutoTokenizer.from_pretrained`` reads.
    manifest : dict
        Recipe, versions, hashes, training curves, evaluation and parameter breakdown.
    """

    name: str
    root: Path
    base_path: Path
    variant_paths: dict[str, Path]
    tokenizer_path: Path
    manifest: dict

    @classmethod
    def from_dir(cls, folder: Path, manifest: dict) -> Zoo:
        """Describe an already checked zoo folder."""
        variants = manifest["spec"]["variants"]
        return cls(
            name=manifest["name"],
            root=folder,
            base_path=folder / BASE,
            variant_paths={v: folder / "variants" / v for v in variants},
            tokenizer_path=folder / "tokenizer",
            manifest=manifest,
        )

    @property
    def spec(self) -> ZooSpec:
        """The recipe this zoo was built from."""
        return ZooSpec(**self.manifest["spec"])

    @property
    def tasks(self) -> tuple[str, ...]:
        """Variant names in build order: domains (mixtral) or tasks (switch)."""
        return tuple(self.variant_paths)

    def model_names(self) -> list[str]:
        """``["base", *tasks]``, aligned with :meth:`paths`."""
        return [BASE, *self.variant_paths]

    def paths(self) -> list[Path]:
        """Checkpoint folders, base first, then the variants in build order."""
        return [self.base_path, *self.variant_paths.values()]

    def path(self, variant: str = BASE) -> Path:
        """Checkpoint folder of ``"base"`` or of one variant.

        Raises
        ------
        ValueError
            Unknown variant; the message lists the known ones.
        """
        if variant == BASE:
            return self.base_path
        if variant not in self.variant_paths:
            raise ValueError(
                f"zoo {self.name!r} has no variant {variant!r}; "
                f"known: {', '.join(self.model_names())}"
            )
        return self.variant_paths[variant]

    def load_model(
        self, variant: str = BASE, *, device: str | torch.device | None = None
    ) -> PreTrainedModel:
        """Load ``"base"`` or a variant with transformers, in eval mode.

        Parameters
        ----------
        variant : str
            ``"base"`` or one of :attr:`tasks`.
        device : str or torch.device, optional
            Where to put it (CPU by default).
        """
        model_class = get_recipe(self.manifest["spec"]["family"]).model_class
        model = model_class.from_pretrained(self.path(variant))
        if device is not None:
            model = model.to(device)
        return model.eval()

    def load_tokenizer(self) -> PreTrainedTokenizerFast:
        """The zoo's tokenizer via ``AutoTokenizer.from_pretrained``."""
        return AutoTokenizer.from_pretrained(self.tokenizer_path)

    def _heldout(self, name: str) -> list:
        data = json.loads((self.root / HELDOUT).read_text(encoding="utf-8"))
        if name not in data["data"]:
            raise ValueError(
                f"zoo {self.name!r} has no held-out set {name!r}; known: {', '.join(data['data'])}"
            )
        return data["data"][name]

    def heldout_texts(self, domain: str) -> list[str]:
        """Held-out documents of a domain (mixtral) or held-out sources of a task (switch)."""
        items = self._heldout(domain)
        return [item if isinstance(item, str) else item[0] for item in items]

    def heldout_ids(self, domain: str) -> list[int]:
        """Held-out documents of a causal zoo as one ``<s> doc </s> <s> doc </s> ...`` stream.

        This is the stream the manifest's perplexities were computed on.

        Raises
        ------
        ValueError
            For a seq2seq zoo (use :meth:`heldout_examples`) or an unknown domain.
        """
        if self.manifest["heldout_kind"] != "documents":
            raise ValueError(
                f"zoo {self.name!r} holds text-to-text examples; use heldout_examples({domain!r})"
            )
        return token_stream(self.load_tokenizer(), self.heldout_texts(domain)).tolist()

    def heldout_examples(self, task: str) -> list[Example]:
        """Held-out (source, target) examples of a seq2seq zoo's task.

        Raises
        ------
        ValueError
            For a causal zoo (use :meth:`heldout_ids`) or an unknown task.
        """
        if self.manifest["heldout_kind"] != "examples":
            raise ValueError(
                f"zoo {self.name!r} holds documents, not examples; use heldout_ids({task!r})"
            )
        return [Example(source, target) for source, target in self._heldout(task)]


# ---------------------------------------------------------------------------------------------
# Building.

#: What a cold build of both built-in zoos may take on two idle cores (printed beside the time).
BUILD_BUDGET_SECONDS = 180


def _prepare(spec: ZooSpec, folder: Path, threads: int) -> TrainJob:
    """Write the tokenizer and held-out data of one zoo; return its base job."""
    recipe = get_recipe(spec.family)
    with training_threads(threads):
        data = recipe.prepare(spec)
    data.tokenizer.save_pretrained(folder / "tokenizer")
    heldout = {"kind": recipe.heldout_kind, "data": data.heldout}
    atomic_write_text(folder / HELDOUT, json.dumps(heldout, ensure_ascii=False))
    return TrainJob(spec, folder, BASE, data, threads)


def _write_manifest(base: TrainJob, results: dict[str, JobResult], build: dict) -> dict:
    """Write the manifest of a zoo whose models are all saved; return it."""
    spec, folder = base.spec, base.folder
    recipe = get_recipe(spec.family)
    models = [BASE, *spec.variants]
    evaluation = {name: results[name].evaluation for name in models}
    config = json.loads((model_folder(folder, BASE) / "config.json").read_text(encoding="utf-8"))
    with torch.device("meta"):  # counts parameters without allocating them
        skeleton = recipe.model_class(recipe.model_class.config_class.from_dict(config))
    manifest = {
        "format_version": ZOO_FORMAT_VERSION,
        "name": spec.name,
        "key": spec_key(spec, base.threads),
        "family": spec.family,
        "model_class": recipe.model_class.__name__,
        "spec": spec.to_dict(),
        "seed": spec.seed,
        "heldout_kind": recipe.heldout_kind,
        "config": skeleton.config.to_dict(),
        "parameters": parameter_breakdown(skeleton),
        "environment": build_environment(base.threads),
        "versions": package_versions(),
        "corpora": base.data.provenance,
        "training": {"curves": {name: results[name].curve for name in models}},
        "evaluation": {
            "metric": recipe.metric,
            "results": evaluation,
            "acceptance": recipe.acceptance(evaluation, spec.variants),
        },
        "build": build,
        "files": file_hashes(folder),
    }
    # Written last: a folder without a manifest is by definition an unfinished build.
    atomic_write_text(
        folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True, default=str)
    )
    return manifest


def _write_builds(specs: Sequence[ZooSpec], folders: Sequence[Path]) -> list[dict]:
    """Train every zoo into its (staging) folder, jobs shared by one pool; return manifests."""
    started, threads, jobs = time.perf_counter(), train_threads(), train_jobs()
    bases = [_prepare(spec, folder, threads) for spec, folder in zip(specs, folders, strict=True)]
    total = sum(job.steps for base in bases for job in (base, *variant_jobs(base)))
    with tqdm(total=total, desc="zoo", unit="step") as progress:
        results = run_jobs(bases, jobs, progress)
    by_zoo: dict[str, dict[str, JobResult]] = {}
    for result in results:
        by_zoo.setdefault(result.zoo, {})[result.model] = result
    seconds = time.perf_counter() - started
    tqdm.write(
        f"built {' + '.join(spec.name for spec in specs)} in {seconds:.0f} s "
        f"({jobs} jobs x {threads} thread(s); budget {BUILD_BUDGET_SECONDS} s for both built-in "
        "zoos on 2 idle cores)"
    )
    build = {
        "seconds": round(seconds, 2),
        "zoos_built_together": [spec.name for spec in specs],
        "threads_per_job": threads,
        "jobs": jobs,
    }
    return [_write_manifest(base, by_zoo[base.spec.name], build) for base in bases]


def build_zoos(specs: Sequence[ZooSpec], root: str | os.PathLike | None = None) -> dict[str, Zoo]:
    """Build several zoos from scratch into their cache folders, training them together.

    Each build happens in a temporary folder next to its target and is renamed into place only
    once complete, so an interrupted build never leaves a half-written zoo behind. The training
    jobs of all zoos share one pool of ``$MOELAB_TRAIN_JOBS`` processes (default: one per core,
    at most two) with ``$MOELAB_TRAIN_THREADS`` threads each (default 1).

    Parameters
    ----------
    specs : sequence of ZooSpec
        The recipes; their names must be distinct.
    root : path-like, optional
        Cache root; defaults to ``$MOELAB_ZOO_DIR`` or the user cache folder.

    Returns
    -------
    dict of str to Zoo
    """
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"zoo names must be distinct, got {names}")
    targets = [zoo_dir(spec, root) for spec in specs]
    with contextlib.ExitStack() as stack:
        # Each folder is renamed into place when the stack closes without an error; a
        # concurrent build of the same recipe that published first is as good as this one.
        staged = [stack.enter_context(atomic_dir(target)) for target in targets]
        _write_builds(specs, staged)
    zoos = {}
    for spec, target in zip(specs, targets, strict=True):
        manifest, reason = check_zoo_dir(target, spec)
        if manifest is None:
            raise RuntimeError(
                f"zoo {spec.name!r} at {target} failed its check right after building: {reason}"
            )
        zoos[spec.name] = Zoo.from_dir(target, manifest)
    return zoos


def build_zoo(spec: ZooSpec, root: str | os.PathLike | None = None) -> Zoo:
    """Build ``spec`` from scratch into its cache folder (replacing whatever is there).

    See :func:`build_zoos`, which builds several zoos at once.

    Parameters
    ----------
    spec : ZooSpec
        The recipe.
    root : path-like, optional
        Cache root; defaults to ``$MOELAB_ZOO_DIR`` or the user cache folder.

    Returns
    -------
    Zoo
    """
    return build_zoos([spec], root)[spec.name]


def _cached(spec: ZooSpec, root: str | os.PathLike | None, *, warn: bool) -> Zoo | None:
    """The valid cached zoo of ``spec``, or None (with a warning if an unusable one is there)."""
    target = zoo_dir(spec, root)
    if not target.exists():
        return None
    manifest, reason = check_zoo_dir(target, spec)
    if manifest is not None:
        return Zoo.from_dir(target, manifest)
    if warn:
        warnings.warn(
            f"zoo cache {target} is unusable: {reason}; rebuilding it",
            ZooCacheWarning,
            stacklevel=4,
        )
    return None


def _load_or_build(specs: Sequence[ZooSpec], root: str | os.PathLike | None) -> dict[str, Zoo]:
    """Open every cached zoo; build the missing or unusable ones together, under their locks."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A training process re-imports the caller's main script (the "spawn" start method);
        # building from there would wait forever for the lock its parent holds.
        raise RuntimeError(
            "a zoo was requested while a training process imported the main script; call "
            'load_zoo/ensure_zoo under `if __name__ == "__main__":` in scripts'
        )
    zoos = {spec.name: _cached(spec, root, warn=True) for spec in specs}
    missing = [spec for spec in specs if zoos[spec.name] is None]
    if not missing:
        return zoos
    zoo_root(root).mkdir(parents=True, exist_ok=True)
    # One builder per recipe at a time: notebooks started together wait for the first build
    # instead of each spending minutes on the same one. Locks are taken in name order.
    with contextlib.ExitStack() as stack:
        for spec in sorted(missing, key=lambda s: s.name):
            target = zoo_dir(spec, root)
            stack.enter_context(FileLock(target.parent / f".{target.name}.lock"))
        for spec in missing:  # built by another process while we waited?
            zoos[spec.name] = _cached(spec, root, warn=False)
        todo = [spec for spec in missing if zoos[spec.name] is None]
        if todo:
            zoos.update(build_zoos(todo, root))
    return zoos


def load_zoo(
    name: str, root: str | os.PathLike | None = None, *, spec: ZooSpec | None = None
) -> Zoo:
    """Open a zoo from the cache, building it first if it is missing or unusable.

    A cached folder is trusted only if its manifest is readable, was written for the same
    recipe, and every file it lists exists with the recorded SHA-256. Otherwise a
    :class:`ZooCacheWarning` names the problem and the zoo is rebuilt.

    Parameters
    ----------
    name : {"mixtral-tiny", "switch-tiny"}
        Which zoo.
    root : path-like, optional
        Cache root; defaults to ``$MOELAB_ZOO_DIR`` or ``platformdirs.user_cache_dir("moelab")``.
    spec : ZooSpec, optional
        A custom recipe (e.g. a much smaller one for tests); its ``name`` must equal ``name``.

    Returns
    -------
    Zoo

    Raises
    ------
    ValueError
        Unknown zoo name (the message lists the known ones) or a spec of another name.

    Examples
    --------
    >>> zoo = load_zoo("mixtral-tiny")  # doctest: +SKIP
    >>> model = zoo.load_model("code")  # doctest: +SKIP
    """
    if spec is None:
        spec = get_spec(name)
    elif spec.name != name:
        raise ValueError(
            f"spec is named {spec.name!r} but zoo {name!r} was asked; pass the same name"
        )
    return _load_or_build([spec], root)[name]


def ensure_zoo(
    names: Iterable[str] = ("mixtral-tiny", "switch-tiny"),
    root: str | os.PathLike | None = None,
    *,
    specs: Mapping[str, ZooSpec] | None = None,
) -> dict[str, Zoo]:
    """Make sure each named zoo is built and valid; return them by name.

    Parameters
    ----------
    names : iterable of str
        Zoo names; defaults to both built-in zoos.
    root : path-like, optional
        Cache root (see :func:`load_zoo`).
    specs : mapping of str to ZooSpec, optional
        Custom recipes by name, overriding the built-in ones.

    Returns
    -------
    dict of str to Zoo

    Raises
    ------
    ValueError
        A name that is neither built in nor in ``specs`` (the message lists the known zoos).
    """
    names = [names] if isinstance(names, str) else list(names)
    known = Registry("zoo", plural="zoos", item_type=ZooSpec)
    for name, spec in [*ZOO_SPECS.items(), *(specs or {}).items()]:
        known.add(name, spec, overwrite=True)  # a custom recipe overrides the built-in one
    chosen = [known.get(n) for n in dict.fromkeys(names)]
    return _load_or_build(chosen, root)
