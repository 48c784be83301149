"""The layout of similarity tables: their columns, the checks every reader runs, row selection,
and the orientation of values as distances.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from labcore.checks import check_type

__all__ = [
    "CROSS_SLOT_COLUMNS",
    "SAME_SLOT_COLUMNS",
    "SUM_PAIR",
    "as_distance",
    "check_table",
    "select_rows",
    "to_frame",
]

#: Column order of same-slot tables.
SAME_SLOT_COLUMNS = (
    "layer",
    "label",
    "expert",
    "model_a",
    "model_b",
    "pair",
    "metric",
    "direction",
    "value",
)
#: Column order of cross-slot tables.
CROSS_SLOT_COLUMNS = (
    "layer",
    "label",
    "expert_a",
    "expert_b",
    "model_a",
    "model_b",
    "pair",
    "metric",
    "direction",
    "value",
)
#: ``pair`` value of the rows written by :func:`sum_over_pairs`.
SUM_PAIR = "sum"


def to_frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Build a table from row records: ``layer*`` and ``expert*`` columns int64, ``value`` float64.

    Parameters
    ----------
    rows : list of dict
        One record per row.
    columns : sequence of str
        Column order (e.g. :data:`SAME_SLOT_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        The table; empty with these columns when ``rows`` is empty.
    """
    table = pd.DataFrame.from_records(rows, columns=list(columns))
    return table.astype(
        {c: "int64" for c in columns if c.startswith(("layer", "expert"))} | {"value": "float64"}
    )


def check_table(table: Any, columns: Sequence[str], what: str) -> None:
    """Raise unless ``table`` is a DataFrame holding ``columns``.

    Parameters
    ----------
    table : object
        What the caller was given.
    columns : sequence of str
        The columns it needs, e.g. :data:`SAME_SLOT_COLUMNS` or :data:`CROSS_SLOT_COLUMNS`.
    what : str
        The caller's name, for the message.

    Raises
    ------
    ValueError
        If ``table`` is not a DataFrame or lacks a column; the message names the missing ones
        and the functions that build such tables.
    """
    check_type(
        table, pd.DataFrame, f"{what}'s table", expected="a DataFrame from moelab.similarity"
    )
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{what} expects a table with columns {list(columns)}; missing {missing} (build it "
            f"with expert_similarity or cross_slot_similarity)"
        )


def select_rows(table: pd.DataFrame, column: str, value: Any, what: str) -> pd.DataFrame:
    """The rows of ``table`` whose ``column`` equals ``value``.

    Parameters
    ----------
    table : pandas.DataFrame
        A similarity table.
    column : str
        E.g. ``"metric"``, ``"pair"`` or ``"layer"``.
    value : object
        A value present in that column.
    what : str
        The caller's name, for the message.

    Returns
    -------
    pandas.DataFrame
        The matching rows (a filtered view of ``table``, index kept).

    Raises
    ------
    ValueError
        If no row has that value; the message lists the values the table has.
    """
    known = list(dict.fromkeys(table[column]))
    if value not in known:
        raise ValueError(f"{what}: unknown {column} {value!r}; the table has {known}")
    return table[table[column] == value]


def as_distance(table: pd.DataFrame) -> pd.Series:
    """A table's values oriented so that lower = more similar, whatever each row's metric.

    Row by row what :meth:`SimilarityMetric.as_distance` does: ``value`` where ``direction``
    is ``"distance"``, ``1 - value`` where it is ``"similarity"``.

    Parameters
    ----------
    table : pandas.DataFrame
        A table with ``value`` and ``direction`` columns.

    Returns
    -------
    pandas.Series
        float64, aligned with ``table``.

    Examples
    --------
    >>> rows = pd.DataFrame({"value": [2.0, 0.25], "direction": ["distance", "similarity"]})
    >>> as_distance(rows).tolist()
    [2.0, 0.75]
    """
    out = table["value"].astype(float).copy()
    similar = table["direction"] == "similarity"
    out[similar] = 1 - out[similar]
    return out
