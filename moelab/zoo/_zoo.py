"""Build, cache and open the zoos: :func:`load_zoo`, :func:`ensure_zoo`, :class:`Zoo`."""

from __future__ import annotations

import copy
import json
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerFast

from moelab.corpora import Example
from moelab.zoo._recipes import (
    Recipe,
    ZooData,
    get_recipe,
    package_versions,
    parameter_breakdown,
    token_stream,
)
from moelab.zoo._spec import ZOO_FORMAT_VERSION, ZOO_SPECS, ZooSpec, get_spec, spec_key
from moelab.zoo._store import (
    HELDOUT,
    MANIFEST,
    atomic_write_text,
    check_zoo_dir,
    file_hashes,
    publish,
    staging_dir,
    zoo_dir,
)
from moelab.zoo._training import train_steps, train_threads, training_threads

__all__ = ["Zoo", "ZooCacheWarning", "build_zoo", "ensure_zoo", "load_zoo"]

BASE = "base"


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


def _train_all(
    spec: ZooSpec, recipe: Recipe, data: ZooData, progress: tqdm
) -> tuple[dict[str, PreTrainedModel], dict[str, list[float]]]:
    """Pre-train the base, fine-tune each variant; return models and loss curves."""

    def tick(loss: float) -> None:
        progress.update(1)
        progress.set_postfix(loss=f"{loss:.3f}", refresh=False)

    # Seed the initialisation without disturbing the caller's global random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        base = recipe.make_model(spec, data.tokenizer)
    progress.set_description(f"{spec.name}: base")
    curves = {
        BASE: train_steps(
            base,
            recipe.batches(spec, data, None),
            recipe.loss,
            steps=spec.pretrain_steps,
            lr=spec.lr,
            warmup_steps=spec.warmup_steps,
            on_step=tick,
        )
    }
    models = {BASE: base}
    for variant in spec.variants:
        progress.set_description(f"{spec.name}: {variant}")
        model = copy.deepcopy(base)  # every variant starts from the same base weights
        curves[variant] = train_steps(
            model,
            recipe.batches(spec, data, variant),
            recipe.loss,
            steps=spec.finetune_steps,
            lr=spec.finetune_lr,
            warmup_steps=spec.warmup_steps,
            on_step=tick,
        )
        models[variant] = model
    return models, curves


def _write_build(spec: ZooSpec, folder: Path) -> dict:
    """Train everything and write the complete zoo into ``folder``; return the manifest."""
    recipe = get_recipe(spec.family)
    started, cpu_started = time.perf_counter(), time.process_time()
    total_steps = spec.pretrain_steps + len(spec.variants) * spec.finetune_steps
    threads = train_threads()
    with training_threads(threads):
        data = recipe.prepare(spec)
        with tqdm(total=total_steps, desc=spec.name, unit="step") as progress:
            models, curves = _train_all(spec, recipe, data, progress)
        evaluation = {name: recipe.evaluate(spec, model, data) for name, model in models.items()}
    data.tokenizer.save_pretrained(folder / "tokenizer")
    for name, model in models.items():
        model.save_pretrained(folder / (BASE if name == BASE else f"variants/{name}"))
    heldout = {"kind": recipe.heldout_kind, "data": data.heldout}
    atomic_write_text(folder / HELDOUT, json.dumps(heldout, ensure_ascii=False))
    manifest = {
        "format_version": ZOO_FORMAT_VERSION,
        "name": spec.name,
        "key": spec_key(spec),
        "family": spec.family,
        "model_class": recipe.model_class.__name__,
        "spec": spec.to_dict(),
        "seed": spec.seed,
        "heldout_kind": recipe.heldout_kind,
        "config": models[BASE].config.to_dict(),
        "parameters": parameter_breakdown(models[BASE]),
        "versions": package_versions(),
        "corpora": data.provenance,
        "training": {"threads": threads, "curves": curves},
        "evaluation": {
            "metric": recipe.metric,
            "results": evaluation,
            "acceptance": recipe.acceptance(evaluation, spec.variants),
        },
        "build_seconds": round(time.perf_counter() - started, 2),
        "build_cpu_seconds": round(time.process_time() - cpu_started, 2),
        "files": file_hashes(folder),
    }
    # Written last: a folder without a manifest is by definition an unfinished build.
    atomic_write_text(
        folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True, default=str)
    )
    return manifest


def build_zoo(spec: ZooSpec, root: str | os.PathLike | None = None) -> Zoo:
    """Build ``spec`` from scratch into its cache folder (replacing whatever is there).

    The build happens in a temporary folder next to the target and is renamed into place only
    once complete, so an interrupted build never leaves a half-written zoo behind.

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
    target = zoo_dir(spec, root)
    with staging_dir(target) as staged:
        _write_build(spec, staged)
        # False when a concurrent build of the same recipe published first; theirs is as good.
        publish(staged, target)
    manifest, reason = check_zoo_dir(target, spec)
    if manifest is None:
        raise RuntimeError(
            f"zoo {spec.name!r} at {target} failed its check right after building: {reason}"
        )
    return Zoo.from_dir(target, manifest)


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
    target = zoo_dir(spec, root)
    if target.exists():
        manifest, reason = check_zoo_dir(target, spec)
        if manifest is not None:
            return Zoo.from_dir(target, manifest)
        warnings.warn(
            f"zoo cache {target} is unusable: {reason}; rebuilding it",
            ZooCacheWarning,
            stacklevel=2,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # One builder per recipe at a time: notebooks started together wait for the first build
    # instead of each spending minutes on the same one.
    with FileLock(target.parent / f".{target.name}.lock"):
        if target.exists():
            manifest, _ = check_zoo_dir(target, spec)
            if manifest is not None:  # built by another process while we waited
                return Zoo.from_dir(target, manifest)
        return build_zoo(spec, root)


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
    specs = dict(specs or {})
    unknown = [n for n in names if n not in ZOO_SPECS and n not in specs]
    if unknown:
        known = sorted({*ZOO_SPECS, *specs})
        raise ValueError(f"unknown zoo {unknown[0]!r}; known zoos: {', '.join(known)}")
    return {n: load_zoo(n, root, spec=specs.get(n)) for n in names}
