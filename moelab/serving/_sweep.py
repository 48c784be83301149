"""Quality of service against load: the same streams through several engines."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from moelab.serving._requests import Request
from moelab.serving._serve import ServingRun

__all__ = ["sweep_loads"]


def sweep_loads(
    runners: Mapping[str, Callable[[Sequence[Request]], ServingRun]],
    streams: Mapping[float, Sequence[Request]],
    *,
    progress: bool = True,
) -> pd.DataFrame:
    """Serve every stream with every runner and tabulate the run summaries.

    Parameters
    ----------
    runners : dict of str to callable
        ``runner(stream) -> ServingRun`` per engine, e.g.
        ``lambda s: serve(engine, s)`` or ``lambda s: serve_partitioned(slices, s)``.
    streams : dict of float to list of Request
        The streams, keyed by their total request rate (requests per second).
    progress : bool, default True
        Show a progress bar over the runs.

    Returns
    -------
    pandas.DataFrame
        One row per (engine, rate): ``engine``, ``rate_per_s`` and the columns of
        :meth:`ServingRun.summary`.
    """
    from tqdm.auto import tqdm

    rows = []
    jobs = [(name, rate) for rate in streams for name in runners]
    for name, rate in tqdm(jobs, desc="serving runs", disable=not progress):
        summary = runners[name](streams[rate]).summary()
        rows.append({"engine": name, "rate_per_s": rate, **summary.drop("engine").to_dict()})
    return pd.DataFrame(rows)
