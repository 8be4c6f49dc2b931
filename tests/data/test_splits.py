"""Membership splits: determinism, disjointness (also after save/load), bad input."""

import json
import multiprocessing

import numpy as np
import pytest

from mcmia_tf.data import draw_inclusion_masks
from mcmia_tf.data import draw_paired_inclusion_masks
from mcmia_tf.data import MembershipSplit


def _split(seed=0, **kwargs):
    args = dict(dataset_name="digits", num_examples=1500, num_members=400, num_reference=100,
                 seed=seed)
    args.update(kwargs)
    return MembershipSplit.create(**args)


def _assert_disjoint(split):
    sets = [split.members, split.non_members, split.reference, split.shadow_pool]
    union = np.concatenate(sets)
    assert np.unique(union).size == union.size


def test_sizes_defaults_and_disjointness():
    split = _split()
    assert split.sizes() == {"members": 400, "non_members": 400, "reference": 100,
                             "shadow_pool": 600}
    _assert_disjoint(split)
    assert all(np.all(np.diff(getattr(split, s)) > 0) for s in ("members", "shadow_pool"))


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = _split(0), _split(0), _split(1)
    np.testing.assert_array_equal(a.members, b.members)
    np.testing.assert_array_equal(a.shadow_pool, b.shadow_pool)
    assert not np.array_equal(a.members, c.members)


def test_save_load_round_trip_keeps_sets(tmp_path):
    split = _split(num_shadow_pool=300)
    path = str(tmp_path / "split.json")
    split.save(path)
    loaded = MembershipSplit.load(path, expected_dataset="digits")
    for name in ("members", "non_members", "reference", "shadow_pool"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(split, name))
    assert loaded.seed == 0 and loaded.num_examples == 1500
    _assert_disjoint(loaded)
    assert json.load(open(path))["dataset_name"] == "digits"  # plain JSON, not pickle


def _save_repeatedly(split, path, times):
    for _ in range(times):
        split.save(path)


def test_concurrent_saves_by_two_processes_leave_a_readable_split(tmp_path):
    # Study shards started together all write the same split file; every read in
    # between must see a whole file, and neither writer may lose its temp file.
    split = _split(num_shadow_pool=300)
    path = str(tmp_path / "split.json")
    split.save(path)
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_save_repeatedly, args=(split, path, 200))
               for _ in range(2)]
    for writer in writers:
        writer.start()
    reads = 0
    while any(w.is_alive() for w in writers) or reads == 0:
        np.testing.assert_array_equal(MembershipSplit.load(path).members, split.members)
        reads += 1
    for writer in writers:
        writer.join()
    assert [w.exitcode for w in writers] == [0, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split.json"]


def test_load_rejects_overlapping_file(tmp_path):
    config = _split().to_dict()
    config["non_members"][0] = config["members"][0]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="`members` and `non_members` overlap"):
        MembershipSplit.load(str(path))


def test_load_rejects_other_dataset(tmp_path):
    path = str(tmp_path / "split.json")
    _split().save(path)
    with pytest.raises(ValueError, match="drawn from 'digits'"):
        MembershipSplit.load(path, expected_dataset="fashion_mnist")


def test_too_large_request_says_the_maximum():
    with pytest.raises(ValueError, match="The largest num_members with these other sizes is 650"):
        _split(num_members=800, num_non_members=750, num_reference=100)
    # Non-members default to as many as members: both grow, so the largest is (1500 - 100) / 2.
    with pytest.raises(ValueError, match="The largest num_members with as many non-members and "
                                         "these other sizes is 700 "):
        _split(num_members=100_000, num_reference=100)


def test_shadow_pool_larger_than_what_is_left():
    with pytest.raises(ValueError, match="At most 600 examples are left"):
        _split(num_shadow_pool=601)


@pytest.mark.parametrize("kwargs", [{"num_members": -1}, {"num_members": 0},
                                    {"num_reference": 1.5}])
def test_bad_counts(kwargs):
    with pytest.raises(ValueError, match="Invalid value for argument"):
        _split(**kwargs)


def test_take_checks_the_dataset_size(digits):
    split = _split()
    x, y = split.take("members", digits.x_train, digits.y_train)
    assert x.shape == (400, 8, 8, 1) and y.shape == (400,)
    with pytest.raises(ValueError, match="training split of 1500 examples"):
        split.take("members", digits.x_test, digits.y_test)


def test_inclusion_masks_balance():
    masks = draw_inclusion_masks(pool_size=1000, num_models=16, seed=3)
    assert masks.shape == (16, 1000) and masks.dtype == bool
    # Every example is IN for exactly half the models ...
    assert np.all(masks.sum(axis=0) == 8)
    # ... and every model trains on about half of the pool.
    assert np.all(np.abs(masks.sum(axis=1) - 500) < 60)
    np.testing.assert_array_equal(masks, draw_inclusion_masks(1000, 16, seed=3))
    assert not np.array_equal(masks, draw_inclusion_masks(1000, 16, seed=4))


def test_inclusion_masks_with_an_odd_number_of_models():
    masks = draw_inclusion_masks(pool_size=2000, num_models=3, seed=0)
    per_example = masks.sum(axis=0)
    assert set(np.unique(per_example)) == {1, 2}
    assert abs(np.mean(per_example == 2) - 0.5) < 0.05
    single = draw_inclusion_masks(pool_size=2000, num_models=1, seed=0)[0]
    assert abs(single.mean() - 0.5) < 0.05  # one model trains on a random half


def test_inclusion_masks_reject_zero_models():
    with pytest.raises(ValueError, match="num_models"):
        draw_inclusion_masks(10, 0, seed=0)


def test_paired_inclusion_masks_balance_every_even_prefix():
    masks = draw_paired_inclusion_masks(101, 7, seed=4)
    assert masks.shape == (7, 101)
    for first in (0, 2, 4):
        np.testing.assert_array_equal(masks[first + 1], ~masks[first])
    for k in (2, 4, 6):
        np.testing.assert_array_equal(masks[:k].sum(axis=0), k // 2)
    # The unpaired last model and every pair's first model train on a random half.
    assert all(abs(int(m.sum()) - 50.5) <= 0.5 for m in masks)
    assert not np.array_equal(masks[0], masks[2])
    np.testing.assert_array_equal(masks, draw_paired_inclusion_masks(101, 7, seed=4))
    with pytest.raises(ValueError, match="num_models"):
        draw_paired_inclusion_masks(10, 0, seed=0)
