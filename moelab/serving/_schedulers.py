"""Which queued request runs next: first come first served, or the active tenant's first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labcore.checks import check_int, check_type
from labcore.registry import Registry
from moelab.serving._requests import Request

__all__ = [
    "FifoScheduler",
    "Scheduler",
    "TenantGroupingScheduler",
    "available_schedulers",
    "get_scheduler",
]


class Scheduler:
    """Picks the next request from the queue (requests in arrival order, at least one)."""

    name = "scheduler"

    def pick(self, queue: Sequence[Request], active: str | None) -> int:
        """Index into ``queue`` of the request to run next.

        Parameters
        ----------
        queue : sequence of Request
            Waiting requests, oldest first.
        active : str or None
            The tenant the engine is configured for (None before the first request).

        Returns
        -------
        int
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the state of a previous run."""


class FifoScheduler(Scheduler):
    """The oldest request first (the serving paper's single queue)."""

    name = "fifo"

    def pick(self, queue: Sequence[Request], active: str | None) -> int:
        return 0


@dataclass
class TenantGroupingScheduler(Scheduler):
    """The active tenant's oldest request first, to save reconfigurations; bounded for fairness.

    While the oldest queued request belongs to another tenant, at most ``fairness_limit``
    requests of the active tenant are served ahead of it; then it runs.

    Parameters
    ----------
    fairness_limit : int, default 4
        Requests that may overtake the oldest one; 0 is FIFO.
    """

    fairness_limit: int = 4
    name: str = field(default="tenant_grouping", init=False)
    _overtaken: int = field(default=0, init=False, repr=False)
    _oldest: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_int(self.fairness_limit, "fairness_limit", minimum=0)

    def reset(self) -> None:
        self._overtaken, self._oldest = 0, None

    def pick(self, queue: Sequence[Request], active: str | None) -> int:
        oldest = queue[0]
        if id(oldest) != self._oldest:  # identity: hand-made requests may share their ids
            self._oldest, self._overtaken = id(oldest), 0
        if oldest.tenant == active or self._overtaken >= self.fairness_limit:
            return 0
        for index, request in enumerate(queue):
            if request.tenant == active:
                self._overtaken += 1
                return index
        return 0


_SCHEDULERS: Registry[type[Scheduler]] = Registry("scheduler", plural="schedulers", sort=False)
_SCHEDULERS.add("fifo", FifoScheduler)
_SCHEDULERS.add("tenant_grouping", TenantGroupingScheduler)

#: Names of the schedulers, in registration order.
available_schedulers = _SCHEDULERS.names


def get_scheduler(name_or_scheduler: str | Scheduler) -> Scheduler:
    """A fresh scheduler by name (default settings), or the given one reset.

    Raises
    ------
    TypeError
        Neither a name nor a :class:`Scheduler`.
    ValueError
        Unknown name; the message lists the known ones.
    """
    if isinstance(name_or_scheduler, Scheduler):
        name_or_scheduler.reset()
        return name_or_scheduler
    check_type(
        name_or_scheduler,
        str,
        "scheduler",
        expected=f"a Scheduler or one of the names {', '.join(available_schedulers())}",
    )
    return _SCHEDULERS.get(name_or_scheduler)()
