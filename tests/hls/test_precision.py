"""Type choice of edgekd.hls.precision (the end-to-end effect is measured in tests/byo/test_ecosystem.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edgekd.hls.precision import CONST_SIGNIFICANT_BITS, DATA_WIDTH, const_type, data_type


def _grid(t) -> float:
    return 2.0 ** -(t.width - t.integer)


@pytest.mark.parametrize("values", [[75.29411], [3.0114e-5, 1.2e-4], [0.47213633, -0.2], [-13.37, 0.8002]],
                         ids=["large-scale", "tiny-rescale", "mixed-sign", "bias"])
def test_const_type_holds_every_value_to_the_significant_bits(values) -> None:
    t = const_type(np.asarray(values))
    v = np.abs(np.asarray(values, dtype=np.float64))
    assert v.max() < 2.0 ** (t.integer - 1)  # no wrap, no saturation
    assert _grid(t) <= v.min() * 2.0 ** -(CONST_SIGNIFICANT_BITS - 1)  # relative rounding <= 2^-18
    assert str(t.rounding_mode) == "RND"


def test_const_type_is_exact_on_a_coarse_grid() -> None:
    t = const_type(np.array([-0.09375, 0.25, 1.5]))  # quantized biases: multiples of 2^-5 = 0.03125
    assert t.width - t.integer == 5


def test_data_type_exact_on_integers_and_wide_on_reals() -> None:
    ints = data_type(np.array([-1439.0, 12.0, 97.0]))
    assert ints.width - ints.integer == 0 and ints.integer == 13  # 2^11 > 1439, + sign + one bit headroom
    assert str(ints.saturation_mode) == "SAT"
    reals = data_type(np.array([0.1416, -2.8567, 0.9414]))
    assert reals.width == DATA_WIDTH and reals.integer == 4
    acc = data_type(np.array([584.75, -3.25]), accumulator=True, min_frac=4)
    assert acc.width - acc.integer == 4 and str(acc.saturation_mode) == "WRAP"
    zeros = data_type(np.zeros(8))
    assert zeros.width >= 1
