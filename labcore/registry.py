"""A small generic registry: register by decorator, look up by name.

Every lookup table of the labs (interpolation kernels, model families, similarity
metrics, owner policies, merge methods, ...) is one :class:`Registry`, so they share
one shape and one error style: an unknown name raises ``ValueError`` listing the
known ones (the habit of mergekit's ``merge_methods/registry.py``), a name that is not a str
``TypeError`` (both from :func:`labcore.checks.check_choice`, the messages of every named
choice of the labs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from labcore.checks import check_choice, unknown_name

__all__ = ["Registry"]

T = TypeVar("T")
_MISSING: Any = object()


class Registry(Generic[T]):
    """Named entries of one kind, looked up by name.

    Parameters
    ----------
    kind : str
        What the registry holds, for messages (e.g. ``"interpolation kernel"``).
    plural : str, optional
        The word after "known" in the unknown-name message (e.g. ``"kernels"`` gives
        ``"...; known kernels: a, b"``); without it the message reads ``"...; known: a, b"``.
    sort : bool, default True
        Whether :meth:`names` (and iteration) are sorted; False keeps registration order.
    duplicate_hint : str, default "pass overwrite=True to replace it"
        What the message for a name registered twice tells the caller to do.
    item_type : type, optional
        When given, entries must be instances of it (``TypeError`` otherwise), and
        :meth:`resolve` passes such an instance through unchanged.

    Examples
    --------
    >>> shapes = Registry("shape", plural="shapes")
    >>> @shapes.register("square")
    ... def _square(x):
    ...     return x * x
    >>> shapes.get("square")(3)
    9
    >>> shapes.get("circle")
    Traceback (most recent call last):
    ...
    ValueError: unknown shape 'circle'; known shapes: square
    """

    def __init__(
        self,
        kind: str,
        *,
        plural: str | None = None,
        sort: bool = True,
        duplicate_hint: str = "pass overwrite=True to replace it",
        item_type: type | None = None,
    ) -> None:
        self.kind = kind
        self.plural = plural
        self.sort = sort
        self.duplicate_hint = duplicate_hint
        self.item_type = item_type
        self._entries: dict[str, T] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={list(self.names())})"

    # ---------------------------------------------------------------- registering
    def add(self, name: str, obj: T, *, overwrite: bool = False) -> T:
        """Register ``obj`` under ``name`` and return it.

        Raises
        ------
        TypeError
            If ``name`` is not a str, or ``obj`` is not an instance of the registry's
            ``item_type`` (when one is set).
        ValueError
            If ``name`` is empty, or already registered and ``overwrite`` is False.
        """
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a str, got {type(name).__name__}")
        self._check_type(obj)
        if not name:
            raise ValueError(f"{self.kind} name must not be empty")
        if name in self._entries and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered; {self.duplicate_hint}")
        self._entries[name] = obj
        return obj

    def add_named(self, obj: T, *, overwrite: bool = False) -> T:
        """Register ``obj`` under its own ``name`` attribute (a value object such as a metric).

        Parameters
        ----------
        obj : T
            The entry; its ``name`` must be new unless ``overwrite``.
        overwrite : bool, default False
            Allow replacing an existing entry.

        Returns
        -------
        T
            The same object, so registering can be chained or used as an expression.

        Raises
        ------
        TypeError
            If ``obj`` is not an instance of the registry's ``item_type`` (checked before its
            name is read), or its name is not a str.
        ValueError
            If the name is empty, or already registered and ``overwrite`` is False.
        """
        self._check_type(obj)
        return self.add(obj.name, obj, overwrite=overwrite)

    def _check_type(self, obj: object) -> None:
        if self.item_type is not None and not isinstance(obj, self.item_type):
            raise TypeError(
                f"a {self.kind} must be a {self.item_type.__name__}, got {type(obj).__name__}"
            )

    def register(self, name: str | None = None, *, overwrite: bool = False) -> Callable[[T], T]:
        """Decorator that registers the decorated object and returns it unchanged.

        Parameters
        ----------
        name : str, optional
            Registry name; by default the object's ``name`` attribute if it is a str,
            else its ``__name__``.
        overwrite : bool, default False
            Allow replacing an existing entry.

        Returns
        -------
        callable
            ``decorate(obj) -> obj``.

        Raises
        ------
        TypeError
            If ``name`` is given but not a str (raised at once), or no name can be found.
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a str, got {type(name).__name__}")

        def decorate(obj: T) -> T:
            key = name
            if key is None:
                own = getattr(obj, "name", None)
                key = own if isinstance(own, str) else getattr(obj, "__name__", None)
            if key is None:
                raise TypeError(f"cannot tell the {self.kind} name of {obj!r}; pass name=...")
            return self.add(key, obj, overwrite=overwrite)

        return decorate

    # ------------------------------------------------------------------ looking up
    def unknown(self, name: object) -> ValueError:
        """The error for an unknown ``name``: it lists the known names."""
        return unknown_name(self.kind, name, self.names(), self.plural)

    def _check_name(self, name: object, also: str = "") -> None:
        if not isinstance(name, str):  # raises TypeError, listing the known names
            check_choice(name, self.kind, self.names(), plural=self.plural, also=also)

    def resolve(self, name_or_item: str | T) -> T:
        """An item of the registry's ``item_type`` unchanged, else the entry of that name.

        Lets a public lookup accept either a name or an already built object.

        Parameters
        ----------
        name_or_item : str or T
            A name from :meth:`names`, or an entry.

        Returns
        -------
        T
            The entry.

        Raises
        ------
        TypeError
            If ``name_or_item`` is neither a str nor an item (the message names both).
        ValueError
            Unknown name; the message lists the known ones.
        """
        if self.item_type is not None:
            if isinstance(name_or_item, self.item_type):
                return name_or_item
            self._check_name(name_or_item, f" or a {self.item_type.__name__}")
        return self.get(name_or_item)

    @overload
    def get(self, name: str) -> T: ...
    @overload
    def get(self, name: str, default: T | None) -> T | None: ...

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The entry registered under ``name``.

        Parameters
        ----------
        name : str
            A name from :meth:`names`.
        default : optional
            Returned for an unknown name, or one that is not a str, instead of raising (as
            ``dict.get`` does), so a caller can word its own error.

        Returns
        -------
        T
            The entry (or ``default``).

        Raises
        ------
        TypeError
            If ``name`` is not a str and no default is given; the message lists the known names.
        ValueError
            If ``name`` is unknown and no default is given; the message lists the known ones.
        """
        if default is _MISSING:
            self._check_name(name)
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name, with a default
            if default is not _MISSING:
                return default
            raise self.unknown(name) from None

    def names(self) -> tuple[str, ...]:
        """Registered names, sorted or in registration order (see ``sort``).

        Returns
        -------
        tuple of str
            The names, e.g. for a menu or an error message.
        """
        return tuple(sorted(self._entries)) if self.sort else tuple(self._entries)

    def items(self) -> tuple[tuple[str, T], ...]:
        """``(name, entry)`` pairs in registration order (e.g. to try entries first-come)."""
        return tuple(self._entries.items())

    def values(self) -> tuple[T, ...]:
        """Entries in registration order."""
        return tuple(self._entries.values())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __setitem__(self, name: str, obj: T) -> None:
        # Replacing is explicit here, as for a dict (monkeypatch.setitem in tests relies on it).
        self.add(name, obj, overwrite=True)

    def __delitem__(self, name: str) -> None:
        self.get(name)  # TypeError for a non-str name, ValueError for an unknown one
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
