"""The pruning API's argument checks: what they accept, what they return, their errors."""

import numpy as np
import pytest

from mcmia_tf.pruning import arguments


def test_integer_accepts_numpy_integers_and_returns_python_ints():
    value = arguments.integer("steps", np.int64(7), 1)
    assert value == 7 and type(value) is int


@pytest.mark.parametrize("value, minimum, expected", [
    (-1, 0, "a non-negative integer"),
    (0, 1, "a positive integer"),
    (4, 5, "an integer >= 5"),
    (True, 0, "a non-negative integer"),  # a bool is never a count
    (2.0, 0, "a non-negative integer"),
])
def test_integer_refuses_with_a_keras_style_error(value, minimum, expected):
    with pytest.raises(ValueError) as error:
        arguments.integer("steps", value, minimum, " (in epochs)")
    assert str(error.value) == (f"Invalid value for argument `steps`. Expected {expected} "
                                f"(in epochs). Received: steps={value!r}")


def test_positive_and_fraction_return_floats():
    assert type(arguments.positive("rho", 3)) is float
    assert arguments.fraction("target_sparsity", 0) == 0.0
    assert arguments.fraction("target_sparsity", np.float32(0.5)) == 0.5


@pytest.mark.parametrize("check, value", [
    (arguments.positive, 0.0), (arguments.positive, -1e-3), (arguments.positive, float("nan")),
    (arguments.positive, True), (arguments.positive, "1"), (arguments.positive, np.complex64(1)),
    (arguments.fraction, 1.0), (arguments.fraction, -0.1), (arguments.fraction, float("nan")),
    (arguments.fraction, False),
])
def test_positive_and_fraction_refuse_out_of_range_values(check, value):
    with pytest.raises(ValueError, match=r"^Invalid value for argument `x`. Expected a "):
        check("x", value)
