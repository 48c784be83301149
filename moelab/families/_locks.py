"""Locking a transformers model against in-place conversion and saving.

Some models are rebuilt around tensors that ``nn.Module`` does not see (a shared expert pool,
4-bit experts stored as buffers of another layout): ``.to()`` or ``save_pretrained`` would
convert or write only part of them. :func:`forbid_conversion` makes both raise instead.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from labcore.checks import check_name, check_type

__all__ = ["forbid_conversion"]


def _raiser(message: str) -> Any:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError(message)

    return refuse


def forbid_conversion(
    model: nn.Module, message: str, *, save_message: str | None = None
) -> nn.Module:
    """Make converting ``model`` in place, or saving it, raise ``RuntimeError``.

    Every in-place conversion of a module (``.to``, ``.half``, ``.float``, ``.cuda``,
    ``.cpu``, ...) goes through its ``_apply``, which is replaced on this instance only, as is
    ``save_pretrained``. Other models of the same class are unaffected.

    Parameters
    ----------
    model : torch.nn.Module
        The model to lock (in place).
    message : str
        What a conversion raises: why it is refused and what to do instead.
    save_message : str, optional
        What ``save_pretrained`` raises; defaults to ``message``.

    Returns
    -------
    torch.nn.Module
        The same model.

    Raises
    ------
    TypeError
        If ``model`` is not a module or a message is not a str.
    ValueError
        If a message is empty.

    Examples
    --------
    >>> from torch import nn
    >>> layer = forbid_conversion(nn.Linear(2, 2), "rebuild it on the device instead")
    >>> layer.half()
    Traceback (most recent call last):
    ...
    RuntimeError: rebuild it on the device instead
    """
    check_type(model, nn.Module, "model", expected="a torch module")
    check_name(message, "message")
    save_message = message if save_message is None else check_name(save_message, "save_message")
    model._apply = _raiser(message)
    model.save_pretrained = _raiser(save_message)
    return model
