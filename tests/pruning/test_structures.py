"""Projections of every structure on tiny, hand-checkable tensors."""

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.pruning import structures


def _conv(kh, kw, cin, cout, seed=0):
    """A conv kernel whose every entry has a distinct magnitude."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(kh * kw * cin * cout).astype(np.float32) + 1.0
    signs = rng.choice([-1.0, 1.0], size=values.size).astype(np.float32)
    return (values * signs).reshape(kh, kw, cin, cout)


def test_unstructured_zeroes_exactly_the_smallest_magnitudes():
    w = np.array([[3.0, -1.0], [0.5, -4.0], [2.0, 6.0]], np.float32)
    projected = structures.project(w, "unstructured", 0.5)
    np.testing.assert_array_equal(projected, [[3.0, 0.0], [0.0, -4.0], [0.0, 6.0]])


def test_projection_accepts_eager_tensors_and_returns_numpy():
    w = tf.constant([[1.0, -2.0], [3.0, 0.1]])
    projected = structures.project(w, "unstructured", 0.25)
    assert isinstance(projected, np.ndarray)
    np.testing.assert_array_equal(projected, [[1.0, -2.0], [3.0, 0.0]])


def test_filter_zeroes_whole_output_channels_with_smallest_norm():
    w = np.zeros((1, 1, 2, 4), np.float32)
    w[0, 0, :, 0] = [3.0, 4.0]   # norm 5
    w[0, 0, :, 1] = [1.0, 0.0]   # norm 1
    w[0, 0, :, 2] = [0.0, 2.0]   # norm 2
    w[0, 0, :, 3] = [6.0, 0.0]   # norm 6
    projected = structures.project(w, "filter", 0.5)
    np.testing.assert_array_equal(projected[..., 1], 0.0)
    np.testing.assert_array_equal(projected[..., 2], 0.0)
    np.testing.assert_array_equal(projected[..., [0, 3]], w[..., [0, 3]])


@pytest.mark.parametrize("name,group_axes,num_groups", [
    ("filter", (0, 1, 2), 6),      # reduce over kh, kw, cin -> one norm per cout
    ("channel", (0, 1, 3), 4),     # one norm per cin
    ("column", (3,), 3 * 3 * 4),   # one norm per (i, j, cin)
    ("kernel", (0, 1), 4 * 6),     # one norm per (cin, cout)
])
def test_group_structures_zero_exact_group_count_and_keep_largest(name, group_axes, num_groups):
    w = _conv(3, 3, 4, 6)
    rate = 0.5
    projected = structures.project(w, name, rate)
    norms = np.sqrt(np.sum(w ** 2, axis=group_axes))
    kept = np.sqrt(np.sum(projected ** 2, axis=group_axes))
    zeroed = kept == 0
    assert norms.size == num_groups
    assert zeroed.sum() == round(rate * num_groups)
    # Whole groups: a group is either all zero or untouched.
    np.testing.assert_array_equal(kept[~zeroed], norms[~zeroed])
    # The largest groups are the ones kept.
    assert norms[zeroed].max() < norms[~zeroed].min()


def test_group_norms_match_definition_for_filter():
    w = _conv(2, 2, 3, 5)
    np.testing.assert_allclose(structures.group_norms(w, "filter"),
                               np.sqrt(np.sum(w ** 2, axis=(0, 1, 2))), rtol=1e-6)


def test_dense_kernel_filter_is_output_neuron_and_channel_is_input_neuron():
    w = np.array([[1.0, 10.0, 0.1], [2.0, 20.0, 0.2]], np.float32)  # (in=2, out=3)
    by_filter = structures.project(w, "filter", 1 / 3)
    np.testing.assert_array_equal(by_filter[:, 2], 0.0)
    np.testing.assert_array_equal(by_filter[:, :2], w[:, :2])
    by_channel = structures.project(w, "channel", 0.5)
    np.testing.assert_array_equal(by_channel[0], 0.0)
    np.testing.assert_array_equal(by_channel[1], w[1])


def test_block_tiles_of_gemm_view():
    # Dense (4, 8) with 2x4 tiles: 2 x 2 = 4 tiles of 8 weights.
    w = np.ones((4, 8), np.float32)
    w[0:2, 0:4] *= 0.1
    w[2:4, 4:8] *= 0.2
    projected = structures.project(w, "block:2x4", 0.5)
    np.testing.assert_array_equal(projected[0:2, 0:4], 0.0)
    np.testing.assert_array_equal(projected[2:4, 4:8], 0.0)
    np.testing.assert_array_equal(projected[0:2, 4:8], 1.0)
    np.testing.assert_array_equal(projected[2:4, 0:4], 1.0)


def test_block_edge_tiles_are_smaller_when_tile_does_not_divide():
    ids = structures.Block(1, 4).group_ids((2, 6))
    np.testing.assert_array_equal(ids, [[0, 0, 0, 0, 1, 1], [2, 2, 2, 2, 3, 3]])


def test_n_m_keeps_n_largest_in_every_m_block_along_input_channels():
    # Conv (1, 1, cin=4, cout=2): blocks run along cin.
    w = np.array([[1.0, -8.0], [-4.0, 7.0], [3.0, 6.0], [2.0, -5.0]], np.float32).reshape(
        1, 1, 4, 2)
    projected = structures.project(w, "2:4", 0.0)
    expected = np.array([[0.0, -8.0], [-4.0, 7.0], [3.0, 0.0], [0.0, 0.0]], np.float32)
    np.testing.assert_array_equal(projected.reshape(4, 2), expected)
    big = _conv(3, 3, 8, 5)
    mask = structures.NM(2, 4).mask(big)
    per_block = mask.reshape(3, 3, 2, 4, 5).sum(axis=3)
    np.testing.assert_array_equal(per_block, 2.0)
    assert mask.mean() == 0.5


def test_pattern_keeps_best_four_entry_pattern_per_kernel():
    w = np.zeros((3, 3, 1, 2), np.float32)
    w[:, :, 0, 0] = [[9, 8, 0], [7, 5, 0], [0, 0, 1]]  # Best: corner square (0, 0).
    w[:, :, 0, 1] = [[0, 3, 0], [2, 4, 5], [0, 0, 0]]  # Best: cross without bottom arm.
    projected = structures.project(w, "pattern", 0.0)
    np.testing.assert_array_equal(projected[:, :, 0, 0], [[9, 8, 0], [7, 5, 0], [0, 0, 0]])
    np.testing.assert_array_equal(projected[:, :, 0, 1], [[0, 3, 0], [2, 4, 5], [0, 0, 0]])
    assert np.count_nonzero(structures.DEFAULT_PATTERNS.reshape(8, 9), axis=1).tolist() == [4] * 8


def test_pattern_above_five_ninths_also_drops_whole_kernels():
    w = _conv(3, 3, 2, 9)
    rate = 1.0 - (4 / 9) * (1 / 3)        # keep a third of the kernels, 4 entries each
    projected = structures.project(w, "pattern", rate)
    nonzero_per_kernel = np.count_nonzero(projected, axis=(0, 1)).ravel()
    assert sorted(set(nonzero_per_kernel.tolist())) == [0, 4]
    assert (nonzero_per_kernel == 0).sum() == round((2 / 3) * 18)
    assert np.isclose(1 - np.count_nonzero(projected) / w.size, rate)


def test_depthwise_filter_is_one_kernel_per_channel():
    w = np.ones((3, 3, 4, 1), np.float32) * np.array([1.0, 3.0, 2.0, 4.0]).reshape(1, 1, 4, 1)
    projected = structures.project(w, "filter", 0.5, depthwise=True)
    np.testing.assert_array_equal(projected[:, :, [0, 2]], 0.0)
    np.testing.assert_array_equal(projected[:, :, [1, 3]], w[:, :, [1, 3]])


def test_projection_is_idempotent():
    w = _conv(3, 3, 4, 8)
    for name in ("unstructured", "filter", "channel", "column", "kernel", "block:1x4",
                 "2:4", "pattern"):
        once = structures.project(w, name, 0.75)
        np.testing.assert_array_equal(structures.project(once, name, 0.75), once)


def test_rate_zero_keeps_everything():
    w = _conv(3, 3, 2, 2)
    np.testing.assert_array_equal(structures.project(w, "filter", 0.0), w)


@pytest.mark.parametrize("bad", ["diagonal", "block:0x4", "4:2", 3])
def test_unknown_structure_raises_keras_style_error(bad):
    with pytest.raises(ValueError, match="Invalid value for argument `structure`"):
        structures.get_structure(bad)


def test_n_m_requires_m_to_divide_input_channels():
    with pytest.raises(ValueError, match="M=4 to divide the number of input channels"):
        structures.project(np.ones((3, 3, 6, 2), np.float32), "2:4", 0.0)


def test_pattern_rejects_non_3x3_kernels():
    with pytest.raises(ValueError, match="Pattern pruning needs 3x3 kernels"):
        structures.project(np.ones((5, 5, 1, 2), np.float32), "pattern", 0.0)


def test_channel_structure_rejects_depthwise_kernels():
    with pytest.raises(ValueError, match="DepthwiseConv2D"):
        structures.project(np.ones((3, 3, 4, 1), np.float32), "channel", 0.5, depthwise=True)


def test_rate_outside_unit_interval_raises():
    with pytest.raises(ValueError, match="Expected a float in \\[0, 1\\)"):
        structures.project(np.ones((2, 2), np.float32), "unstructured", 1.0)


def test_structure_config_round_trip():
    for name in ("unstructured", "filter", "block:2x8", "1:4", "pattern"):
        structure = structures.get_structure(name)
        rebuilt = structures.get_structure(structure.get_config())
        assert type(rebuilt) is type(structure)
        assert rebuilt.get_config() == structure.get_config()
