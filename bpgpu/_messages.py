"""What error messages share: a value shown safely, whatever built it (a user, a JSON header, a
pickle), and warnings that a reader of untrusted files turns into errors."""

from __future__ import annotations

import contextlib
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

SCALARS = (bool, int, float, str, bytes, type(None))


def show(value: Any, limit: int = 80) -> str:
    """`value` for a message, at most about `limit` characters.

    Never the repr of something a forged file could make expensive or impossible to print: an integer
    too long for Python to print (over 4300 digits) is given by its size, a long list is cut, and a
    container of anything but plain scalars (deep, cyclic, or holding arrays) only by its type and
    length. NumPy arrays are given by dtype and shape.
    """
    if _huge(value):
        return f"an integer of about {int(abs(int(value)).bit_length() * 0.30103) + 1} digits"
    if isinstance(value, (str, bytes)) and len(value) > limit:
        value = value[:limit]
    elif isinstance(value, (list, tuple)) and all(
        type(item) in SCALARS and not _huge(item) for item in value[: limit + 1]
    ):
        if len(value) > limit:
            value = [*value[:limit], ...]
    elif isinstance(value, (list, tuple, dict, set)) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        return _described(value)
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # whatever else a forged value holds that cannot print
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: max(limit - 3, 1)] + "..."


def _huge(value: Any) -> bool:
    """An integer too long to print quickly (Python refuses to print over 4300 digits)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(int(value)) > 10**30


def _described(value: Any) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"a {value.dtype} array of shape {tuple(value.shape)}"
    return f"a {type(value).__name__} of length {len(value)}"


def refuse_constant(text: str) -> float:
    """`json.loads(..., parse_constant=refuse_constant)`: NaN and Infinity are not JSON."""
    raise ValueError(f"{text} is not JSON")


@contextlib.contextmanager
def warnings_as_errors() -> Iterator[None]:
    """Every warning inside raises, so that a reader refuses what NumPy would only warn about."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
