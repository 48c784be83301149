"""MIG-style static partitions: each tenant alone on a slice of the device, slices side by side.

A partition cannot be made here (MIG is configured by an administrator and would take the whole
device), so a slice is emulated: the tenant's requests run on the full device, one slice after
the other, and each measured time is stretched by the slice's share of the device from NVIDIA's
MIG profile table. At batch 1 the first token (prefill) is bound by compute, the following
tokens by memory bandwidth, so prefill scales with the slice's compute slices (g of 7) and
decode with its memory slices (of 8). The slices' clocks run in parallel, as real slices do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from labcore.checks import check_type
from labcore.registry import Registry
from moelab.serving._decode import Generation
from moelab.serving._engines import Engine
from moelab.serving._requests import Request
from moelab.serving._schedulers import Scheduler
from moelab.serving._serve import Outcome, ServingRun, serve

__all__ = ["MigProfile", "available_mig_profiles", "get_mig_profile", "serve_partitioned"]


@dataclass(frozen=True)
class MigProfile:
    """One MIG profile of an H200 (141 GB): its share of compute, memory and bandwidth.

    Parameters
    ----------
    name : str
        NVIDIA's name, e.g. ``"3g.71gb"``.
    compute_slices : int
        Compute slices (GPCs) of 7.
    memory_slices : int
        Memory slices of 8 (memory capacity and bandwidth).
    memory_gb : float
        Its memory, in GB.
    """

    name: str
    compute_slices: int
    memory_slices: int
    memory_gb: float

    @property
    def prefill_slowdown(self) -> float:
        """How much longer compute-bound work takes than on the whole device: 7 / g."""
        return 7 / self.compute_slices

    @property
    def decode_slowdown(self) -> float:
        """How much longer bandwidth-bound work takes: 8 / memory slices."""
        return 8 / self.memory_slices


# NVIDIA MIG user guide, supported profiles of the H200 141GB.
_PROFILES: Registry[MigProfile] = Registry("MIG profile", plural="profiles", sort=False)
for _profile in (
    MigProfile("1g.18gb", 1, 1, 18),
    MigProfile("1g.35gb", 1, 2, 35),
    MigProfile("2g.35gb", 2, 2, 35),
    MigProfile("3g.71gb", 3, 4, 71),
    MigProfile("4g.71gb", 4, 4, 71),
    MigProfile("7g.141gb", 7, 8, 141),
):
    _PROFILES.add(_profile.name, _profile)

#: Names of the H200 MIG profiles, smallest first.
available_mig_profiles = _PROFILES.names
#: A profile by name (a profile passes through).
get_mig_profile = _PROFILES.get


class _SliceEngine(Engine):
    """An engine whose measured times are stretched to what a MIG slice would take."""

    def __init__(self, engine: Engine, profile: MigProfile) -> None:
        self.inner, self.profile = engine, profile
        self.name, self.tenants = engine.name, engine.tenants
        self.max_context = engine.max_context

    @property
    def active(self) -> str | None:  # type: ignore[override]
        return self.inner.active

    def switch(self, tenant: str) -> float:
        return self.inner.switch(tenant) * self.profile.decode_slowdown  # a copy: bandwidth

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
        out = self.inner.generate(prompt_ids, max_new_tokens)
        first = out.first_token_s * self.profile.prefill_slowdown
        rest = (out.total_s - out.first_token_s) * self.profile.decode_slowdown
        return Generation(out.tokens, first, first + rest)


def serve_partitioned(
    slices: Mapping[str, Engine],
    requests: Sequence[Request],
    profile: str | MigProfile = "3g.71gb",
    scheduler: str | Scheduler = "fifo",
    *,
    max_queue: int = 256,
) -> ServingRun:
    """Serve a stream on MIG-style slices: one tenant per slice, each with its own queue.

    Parameters
    ----------
    slices : dict of str to Engine
        The engine of each tenant's slice (it serves that tenant only).
    requests : sequence of Request
        The stream; a request for a tenant without a slice is rejected.
    profile : str or MigProfile, default "3g.71gb"
        The slice of every tenant (two 3g.71gb slices split an H200 in two).
    scheduler : str or Scheduler, default "fifo"
        Per slice.
    max_queue : int, default 256
        Per slice.

    Returns
    -------
    ServingRun
        Every request's outcome, in request order, with times on the slices' common clock.

    Raises
    ------
    ValueError
        An unknown profile, or slices that need more memory slices than the device has.
    """
    check_type(slices, Mapping, "slices", expected="a dict {tenant: Engine}")
    spec = profile if isinstance(profile, MigProfile) else get_mig_profile(profile)
    check_type(spec, MigProfile, "profile")
    if len(slices) * spec.memory_slices > 8 or len(slices) * spec.compute_slices > 7:
        raise ValueError(
            f"{len(slices)} slices of {spec.name} need {len(slices) * spec.compute_slices} of 7 "
            f"compute and {len(slices) * spec.memory_slices} of 8 memory slices; an H200 holds at "
            f"most {min(7 // spec.compute_slices, 8 // spec.memory_slices)} of them (profiles: "
            f"{', '.join(available_mig_profiles())})"
        )
    outcomes: list[Outcome] = []
    positions: dict[int, Outcome] = {}
    events: list[tuple[float, str, int]] = []
    for tenant, engine in slices.items():
        mine = [i for i, r in enumerate(requests) if r.tenant == tenant]
        run = serve(
            _SliceEngine(engine, spec), [requests[i] for i in mine], scheduler, max_queue=max_queue
        )
        positions.update(zip(mine, run.outcomes))
        events += [(t, tenant, n) for t, n in run.queue]
        policy = run.scheduler
    known = ", ".join(slices)
    for i, request in enumerate(requests):
        reason = f"unknown tenant {request.tenant!r}; the slices serve {known}"
        outcomes.append(positions.get(i) or Outcome(request, "rejected", reason))
    # The queues of all slices together, over time.
    lengths: dict[str, int] = {}
    queue = []
    for t, tenant, n in sorted(events):
        lengths[tenant] = n
        queue.append((t, sum(lengths.values())))
    name = f"partitioned ({len(slices)} x {spec.name})"
    return ServingRun(name, policy if slices else "fifo", outcomes, queue)
