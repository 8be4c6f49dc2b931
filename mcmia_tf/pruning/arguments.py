"""Checks of the pruning API's numeric arguments, raising Keras-style errors.

Every check raises `ValueError("Invalid value for argument `name`. Expected ...
Received: name=...")`, the form of Keras's own argument errors, and returns the
value as a plain Python number (so that `get_config` stays JSON-serializable when a
caller passes a NumPy scalar). Booleans are refused everywhere: `True` is an `int`
to Python but never a meaningful count or rate here.
"""

import numpy as np

__all__ = ["fraction", "integer", "positive"]

# Python and NumPy real numbers (a complex NumPy scalar is an `np.number` with no order).
_REAL = (int, float, np.integer, np.floating)


def _invalid(name: str, expected: str, value) -> ValueError:
    return ValueError(f"Invalid value for argument `{name}`. Expected {expected}. "
                      f"Received: {name}={value!r}")


def integer(name: str, value, minimum: int = 0, meaning: str = "") -> int:
    """`value` as an int, if it is an integer >= `minimum` (NumPy integers included).

    Args:
      name: the argument's name, for the error.
      value: what the caller received.
      minimum: the smallest valid value.
      meaning: appended to "Expected a ... integer" in the error, e.g. " (in steps)".
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        raise _invalid(name, kind + meaning, value)
    return int(value)


def positive(name: str, value, meaning: str = "") -> float:
    """`value` as a float, if it is a number > 0."""
    if isinstance(value, bool) or not isinstance(value, _REAL) or not value > 0:
        raise _invalid(name, "a positive float" + meaning, value)
    return float(value)


def fraction(name: str, value, meaning: str = "") -> float:
    """`value` as a float, if it is a number in [0, 1) (a sparsity or a pruning rate)."""
    if isinstance(value, bool) or not isinstance(value, _REAL) or not 0 <= value < 1:
        raise _invalid(name, "a float in [0, 1)" + meaning, value)
    return float(value)
