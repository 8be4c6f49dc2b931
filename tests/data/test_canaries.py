"""Canaries: reserved indices, balanced IN/OUT, seeded labels and noise, JSON, bad input."""

import dataclasses
import json

import numpy as np
import pytest

from mcmia_tf.data import Canaries
from mcmia_tf.data import CANARY_KINDS
from mcmia_tf.data import MembershipSplit
from mcmia_tf.data import plant_canaries

_NUM_EXAMPLES = 200
_NUM_CLASSES = 5
_SETS = ("members", "non_members", "reference", "shadow_pool")


def _data(dtype=np.float32):
    rng = np.random.default_rng(123)
    if np.issubdtype(dtype, np.integer):
        x = rng.integers(10, 200, size=(_NUM_EXAMPLES, 4, 4, 1)).astype(dtype)
    else:
        x = rng.uniform(-1.0, 2.0, size=(_NUM_EXAMPLES, 4, 4, 1)).astype(dtype)
    return x, rng.integers(0, _NUM_CLASSES, size=_NUM_EXAMPLES)


def _split(**kwargs):
    # 60 + 60 + 20 + 40 = 180 of 200 examples have a role: 20 are free for canaries.
    args = dict(dataset_name="toy", num_examples=_NUM_EXAMPLES, num_members=60, num_reference=20,
                num_shadow_pool=40, seed=0)
    args.update(kwargs)
    return MembershipSplit.create(**args)


def _planted(num_canaries=10, **kwargs):
    _, y = _data()
    return plant_canaries(_split(), y, num_canaries, **kwargs)


def test_canaries_are_disjoint_from_every_set():
    split = _split()
    planted = plant_canaries(split, _data()[1], 12, seed=3)
    assert isinstance(planted.canaries, Canaries) and planted.canaries.num_canaries == 12
    assert split.canaries is None  # a new split; the original is unchanged
    union = np.concatenate([getattr(planted, s) for s in _SETS] + [planted.canaries.indices])
    assert np.unique(union).size == union.size
    assert set(planted.canaries.indices) <= set(split.unassigned())
    assert planted.unassigned().size == split.unassigned().size - 12 == 8
    assert planted.sizes() == {"members": 60, "non_members": 60, "reference": 20,
                               "shadow_pool": 40, "canaries": 12}
    for name in _SETS:  # the other sets are kept as they were
        np.testing.assert_array_equal(getattr(planted, name), getattr(split, name))
    assert np.all(np.diff(planted.canaries.indices) > 0)
    assert not planted.canaries.indices.flags.writeable
    assert "canaries=12" in repr(planted)


@pytest.mark.parametrize("other", _SETS)
def test_split_rejects_canaries_overlapping_a_set(other):
    split = _split()
    taken = getattr(split, other)[0]
    canaries = Canaries(kind="mislabeled", indices=[taken, split.unassigned()[0]], labels=[0, 1],
                        target_in=[True, False], seed=0)
    with pytest.raises(ValueError, match=f"`{other}` and `canaries` overlap in 1 indices"):
        dataclasses.replace(split, canaries=canaries)


def test_split_rejects_canaries_outside_the_training_split():
    canaries = Canaries(kind="noise", indices=[5, _NUM_EXAMPLES], labels=[0, 1],
                        target_in=[False, True], seed=0)
    with pytest.raises(ValueError, match=r"`canaries` has indices outside \[0, 200\)"):
        dataclasses.replace(_split(), canaries=canaries)


@pytest.mark.parametrize("num_canaries", [2, 11, 20])
def test_exactly_half_are_in_for_the_target(num_canaries):
    canaries = _planted(num_canaries).canaries
    assert canaries.target_in.dtype == bool
    assert canaries.target_in.sum() == num_canaries // 2


def test_target_training_data_is_members_plus_in_canaries():
    x, y = _data()
    split = plant_canaries(_split(), y, 10, seed=1)
    canaries = split.canaries
    x_train, y_train = split.target_training_data(x, y)
    assert x_train.shape == (60 + 5, 4, 4, 1) and y_train.shape == (65,)
    assert x_train.dtype == x.dtype and y_train.dtype == y.dtype
    x_members, y_members = split.take("members", x, y)
    np.testing.assert_array_equal(x_train[:60], x_members)
    np.testing.assert_array_equal(y_train[:60], y_members)
    # The IN canaries, with their canary labels (never the true ones).
    np.testing.assert_array_equal(x_train[60:], x[canaries.indices[canaries.target_in]])
    np.testing.assert_array_equal(y_train[60:], canaries.labels[canaries.target_in])
    assert np.all(y_train[60:] != y[canaries.indices[canaries.target_in]])
    # No OUT canary is trained on (the inputs are distinct random rows).
    rows = {row.tobytes() for row in x_train}
    assert not any(x[i].tobytes() in rows for i in canaries.indices[~canaries.target_in])
    x_in, y_in = canaries.take_in(x)
    assert x_in.shape[0] == y_in.shape[0] == 5
    x_all, y_all = canaries.take(x)
    assert x_all.shape[0] == y_all.shape[0] == 10


def test_target_training_data_without_canaries_is_the_members():
    x, y = _data()
    split = _split()
    for got, want in zip(split.target_training_data(x, y), split.take("members", x, y)):
        np.testing.assert_array_equal(got, want)


def test_mislabeled_labels_differ_and_are_seeded():
    _, y = _data()
    a, b, c = (_planted(20, seed=s, num_classes=_NUM_CLASSES).canaries for s in (0, 0, 1))
    assert a.kind == CANARY_KINDS[0] == "mislabeled"
    assert np.all(a.labels != y[a.indices])
    assert np.all((a.labels >= 0) & (a.labels < _NUM_CLASSES)) and a.labels.dtype == np.int64
    for name in ("indices", "labels", "target_in"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not (np.array_equal(a.labels, c.labels) and np.array_equal(a.target_in, c.target_in))
    assert not np.array_equal(_planted(10, seed=0).canaries.indices,
                              _planted(10, seed=1).canaries.indices)


def test_mislabeled_flips_cover_every_other_class():
    x = np.zeros((2000, 1), np.float32)
    y = np.zeros(2000, np.int64)
    split = MembershipSplit.create(dataset_name="toy", num_examples=2000, num_members=10,
                                   num_shadow_pool=0)
    canaries = plant_canaries(split, y, 1000, num_classes=4).canaries
    assert set(np.unique(canaries.labels)) == {1, 2, 3}  # r uniform in [1, C - 1]
    assert canaries.inputs(x).shape == (1000, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_noise_inputs_are_in_range_deterministic_and_new(dtype):
    x, y = _data(dtype)
    canaries = plant_canaries(_split(), y, 10, kind="noise", seed=4).canaries
    noise = canaries.inputs(x)
    assert noise.shape == (10, 4, 4, 1) and noise.dtype == x.dtype
    assert noise.min() >= x.min() and noise.max() <= x.max()
    np.testing.assert_array_equal(noise, canaries.inputs(x))  # same on every call
    assert all(not np.array_equal(noise[k], x[i]) for k, i in enumerate(canaries.indices))
    assert np.unique(noise.reshape(10, -1), axis=0).shape[0] == 10  # one image per canary
    assert np.all((canaries.labels >= 0) & (canaries.labels < _NUM_CLASSES))
    # Seeded by (seed, index) alone: a rebuilt `Canaries` gives the same noise.
    rebuilt = Canaries.from_dict(json.loads(json.dumps(canaries.to_dict())))
    np.testing.assert_array_equal(rebuilt.inputs(x), noise)
    other = plant_canaries(_split(), y, 10, kind="noise", seed=5).canaries
    assert not np.array_equal(other.inputs(x), noise)


def test_json_round_trip_keeps_every_canary_field(tmp_path):
    x, _ = _data()
    split = _planted(11, kind="noise", seed=7)
    path = str(tmp_path / "split.json")
    split.save(path)
    loaded = MembershipSplit.load(path, expected_dataset="toy")
    assert loaded.canaries.kind == "noise" and loaded.canaries.seed == 7
    for name in ("indices", "labels", "target_in"):
        got, want = getattr(loaded.canaries, name), getattr(split.canaries, name)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    for name in _SETS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(split, name))
    np.testing.assert_array_equal(loaded.canaries.inputs(x), split.canaries.inputs(x))
    assert json.load(open(path))["canaries"]["kind"] == "noise"  # plain JSON


def test_split_without_canaries_writes_the_same_json_as_before(tmp_path):
    split = _split()
    path = tmp_path / "split.json"
    split.save(str(path))
    before = {"format_version": 1, "dataset_name": "toy", "num_examples": _NUM_EXAMPLES,
              "seed": 0, **{name: getattr(split, name).tolist() for name in _SETS}}
    assert path.read_text() == json.dumps(before)
    assert "canaries" not in split.to_dict() and "canaries" not in split.sizes()
    assert MembershipSplit.from_dict(before).canaries is None  # old files load


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_canaries=1), r"Expected an integer >= 2 \(the canary audit compares IN and OUT "
                           r"canaries\). Received: num_canaries=1"),
    (dict(num_canaries=21), r"at most 20 examples of the training split have no role; lower "
                            r"num_canaries or num_members / num_shadow_pool\. Received: "
                            r"num_canaries=21"),
    (dict(kind="blank"), r"Invalid value for argument `kind`\. Expected one of \('mislabeled', "
                         r"'noise'\)\. Received: kind='blank'"),
    (dict(num_classes=1), r"Invalid value for argument `num_classes`.*Received: num_classes=1"),
    (dict(num_classes=3), r"above every label in `y`.*Received: num_classes=3"),
    (dict(seed=-1), r"Invalid value for argument `seed`"),
])
def test_plant_rejects_bad_arguments(kwargs, match):
    args = dict(num_canaries=10)
    args.update(kwargs)
    num_canaries = args.pop("num_canaries")
    with pytest.raises(ValueError, match=match):
        plant_canaries(_split(), _data()[1], num_canaries, **args)


def test_plant_rejects_labels_of_another_length():
    with pytest.raises(ValueError, match=r"Invalid value for argument `y`.*shape \(200,\).*"
                                         r"Received: y=y of shape \(199,\)"):
        plant_canaries(_split(), _data()[1][:199], 10)


def test_plant_rejects_a_split_that_already_has_canaries():
    with pytest.raises(ValueError, match=r"Expected a split without canaries.*Received: "
                                         r"split=a split with 10 canaries"):
        plant_canaries(_planted(10), _data()[1], 4)


def test_default_shadow_pool_leaves_no_room():
    split = _split(num_shadow_pool=None)  # the shadow pool takes everything left
    with pytest.raises(ValueError, match="at most 0 examples of the training split have no role"):
        plant_canaries(split, _data()[1], 2)


def test_canaries_constructor_checks():
    with pytest.raises(ValueError, match="Exactly 2 of 4 canaries must be IN"):
        Canaries(kind="noise", indices=[1, 2, 3, 4], labels=[0, 0, 0, 0],
                 target_in=[True, False, False, False], seed=0)
    with pytest.raises(ValueError, match="Invalid value for argument `kind`"):
        Canaries(kind="blank", indices=[1, 2], labels=[0, 0], target_in=[True, False], seed=0)
    with pytest.raises(ValueError, match="repeated"):
        Canaries(kind="noise", indices=[1, 1], labels=[0, 0], target_in=[True, False], seed=0)
    # Unsorted input is sorted with its labels and IN flags.
    canaries = Canaries(kind="noise", indices=[9, 2], labels=[3, 1], target_in=[True, False],
                        seed=0)
    np.testing.assert_array_equal(canaries.indices, [2, 9])
    np.testing.assert_array_equal(canaries.labels, [1, 3])
    np.testing.assert_array_equal(canaries.target_in, [False, True])
