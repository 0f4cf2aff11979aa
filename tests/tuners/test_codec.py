"""The search-space codec: every hyperparameter kind, conditions, growth, tokens."""

import math

import keras_tuner
import numpy as np
import pytest

from metanas.tuners import SearchSpaceCodec, values_hash
from tests.tuners.conformance import mixed_space, small_space


def rng(seed=0):
    return np.random.default_rng(seed)


def test_samples_are_valid_and_cover_every_kind():
    codec = SearchSpaceCodec(mixed_space())
    samples = [codec.sample(rng(i)) for i in range(300)]
    assert all(codec.is_valid(s) for s in samples)
    conv = [s for s in samples if s["block"] == "conv"]
    dense = [s for s in samples if s["block"] == "dense"]
    assert conv and dense
    assert all("units" not in s and "filters" in s for s in conv)
    assert all("filters" not in s and "units" in s for s in dense)
    assert {s["batchnorm"] for s in conv} == {False, True}
    assert all(("momentum" in s) == s["batchnorm"] for s in conv)
    assert all(s["epochs"] == 3 for s in samples)
    assert all(s["units"] % 8 == 0 and 8 <= s["units"] <= 256 for s in dense)
    assert all(s["dropout"] in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5) for s in dense)


def test_log_sampling_is_log_uniform():
    hp = keras_tuner.HyperParameters()
    hp.Float("lr", 1e-5, 1e-1, sampling="log")
    codec = SearchSpaceCodec(hp)
    r = rng(1)
    lrs = np.array([codec.sample(r)["lr"] for _ in range(4000)])
    # Under log-uniform sampling each decade holds a quarter of the draws.
    decades = np.histogram(np.log10(lrs), bins=[-5, -4, -3, -2, -1])[0] / len(lrs)
    assert np.allclose(decades, 0.25, atol=0.03), decades


def test_reverse_log_concentrates_near_the_top():
    hp = keras_tuner.HyperParameters()
    hp.Float("momentum", 0.5, 0.999, sampling="reverse_log")
    codec = SearchSpaceCodec(hp)
    r = rng(2)
    values = np.array([codec.sample(r)["momentum"] for _ in range(2000)])
    # P(value > t) = log((max + min - t) / min) / log(max / min) under reverse_log.
    expected = math.log((0.999 + 0.5 - 0.95) / 0.5) / math.log(0.999 / 0.5)
    uniform = (0.999 - 0.95) / (0.999 - 0.5)
    assert abs(np.mean(values > 0.95) - expected) < 0.025 and expected > uniform + 0.03
    assert values.min() >= 0.5 and values.max() <= 0.999


def test_mutate_changes_active_decisions_and_respects_conditions():
    codec = SearchSpaceCodec(mixed_space())
    r = rng(3)
    parent = codec.sample(r)
    for _ in range(200):
        child = codec.mutate(parent, r, rate=0.0, min_mutations=1)
        assert codec.is_valid(child)
        assert child != parent
        parent = child


def test_mutation_rate_one_changes_every_decision():
    hp = keras_tuner.HyperParameters()
    for i in range(5):
        hp.Choice(f"c{i}", ["a", "b", "c"])
    codec = SearchSpaceCodec(hp)
    parent = {f"c{i}": "a" for i in range(5)}
    child = codec.mutate(parent, rng(4), rate=1.0)
    assert all(child[k] != "a" for k in child)


def test_ordered_mutation_prefers_neighbours():
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 0, 90, step=10)  # ten values: neighbours are the local moves
    codec = SearchSpaceCodec(hp, local_move_prob=1.0)
    r = rng(5)
    moves = {codec.mutate({"units": 50}, r)["units"] for _ in range(100)}
    assert moves == {40, 60}


def test_crossover_takes_values_from_parents_and_stays_valid():
    codec = SearchSpaceCodec(mixed_space())
    r = rng(6)
    for _ in range(200):
        a, b = codec.sample(r), codec.sample(r)
        child = codec.crossover(a, b, r)
        assert codec.is_valid(child)
        for name, value in child.items():
            if name in a and name in b:
                assert value in (a[name], b[name])


def test_crossover_of_identical_parents_is_the_parent():
    codec = SearchSpaceCodec(mixed_space())
    parent = codec.sample(rng(7))
    assert codec.crossover(parent, parent, rng(8)) == parent


def test_repair_fills_names_the_space_grew_and_drops_unknown_ones():
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", [1, 2])
    codec = SearchSpaceCodec(hp)
    old = codec.sample(rng(9))
    hp.Choice("grown", ["x", "y"])  # the hypermodel registers a new name later
    repaired = codec.repair({**old, "stale": 3}, rng(10))
    assert set(repaired) == {"a", "grown"} and codec.is_valid(repaired)
    assert codec.repair({"a": 2}) == {"a": 2, "grown": "x"}  # default without rng


def test_repair_casts_numbers_and_rejects_out_of_range():
    hp = keras_tuner.HyperParameters()
    hp.Float("f", 0.0, 1.0)
    hp.Int("i", 1, 9, step=2)
    codec = SearchSpaceCodec(hp)
    assert codec.repair({"f": 1, "i": 5.0}) == {"f": 1.0, "i": 5}
    fixed = codec.repair({"f": 3.0, "i": 4}, rng(0))
    assert 0.0 <= fixed["f"] <= 1.0 and fixed["i"] in (1, 3, 5, 7, 9)
    # A number equal to a choice is that choice (keras-tuner compares with ==).
    hp.Choice("units", [32, 64, 128])
    hp.Choice("rate", [0.0, 0.5])
    hp.Boolean("bn")
    hp.Choice("flag", [1, 2])
    given = {"f": 0.5, "i": 3, "units": 128.0, "rate": 0, "bn": 0, "flag": True}
    cast = codec.repair(given, rng(0))
    assert {k: (v, type(v)) for k, v in cast.items() if k != "flag"} == {
        "f": (0.5, float), "i": (3, int), "units": (128, int), "rate": (0.0, float),
        "bn": (False, bool)}
    assert cast["flag"] in (1, 2)  # True is not the int 1: invalid, drawn again


def test_hash_is_stable_and_matches_keras_tuner():
    values = {"b": 0.1, "a": "x"}
    assert values_hash(values) == values_hash(dict(reversed(list(values.items()))))
    oracle = keras_tuner.oracles.RandomSearchOracle()
    assert values_hash(values) == oracle._compute_values_hash(values)


def test_enumerate_and_size_of_conditional_space():
    codec = SearchSpaceCodec(small_space())
    configs = list(codec.enumerate())
    assert codec.size() == len(configs) == 9
    assert all(codec.is_valid(c) for c in configs)
    assert SearchSpaceCodec(mixed_space()).size() is None  # continuous floats


def test_tokens_round_trip_on_discrete_values():
    hp = keras_tuner.HyperParameters()
    hp.Choice("op", ["a", "b", "c"])
    hp.Boolean("flag")
    hp.Int("depth", 1, 4)
    codec = SearchSpaceCodec(hp)
    for config in codec.enumerate():
        tokens = codec.encode(config)
        decoded = {
            h.name: codec.from_token(h, tokens[h.name]) for h in codec.active_decisions(config)
        }
        assert decoded == config


def test_log_float_buckets_are_equal_in_log_space():
    hp = keras_tuner.HyperParameters()
    lr = hp.Float("lr", 1e-4, 1e0, sampling="log")
    codec = SearchSpaceCodec(hp, num_buckets=4)
    hp_obj = hp.space[0]
    assert codec.num_tokens(hp_obj) == 4
    centres = [codec.from_token(hp_obj, t) for t in range(4)]
    ratios = [centres[i + 1] / centres[i] for i in range(3)]
    assert np.allclose(ratios, 10.0, rtol=1e-6)
    assert codec.to_token(hp_obj, 1e-4) == 0 and codec.to_token(hp_obj, 0.5) == 3
    assert codec.to_token(hp_obj, 2e-3) == 1
    del lr


def test_wide_int_is_bucketed_and_token_errors_name_the_range():
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 1, 1000)
    codec = SearchSpaceCodec(hp, num_buckets=10)
    units = hp.space[0]
    assert codec.num_tokens(units) == 10
    assert 1 <= codec.from_token(units, 0) <= 100
    with pytest.raises(ValueError, match="allowed 0..9"):
        codec.from_token(units, 10)


@pytest.mark.parametrize("settings", [dict(min_value=1, max_value=11, sampling="log"),
                                      dict(min_value=1, max_value=100, sampling="reverse_log"),
                                      dict(min_value=0, max_value=99)])
def test_any_position_in_a_bucket_is_a_value_of_the_range(settings):
    # The largest position below 1, in the last bucket of an Int, was max_value + 1.
    hp = keras_tuner.HyperParameters()
    hp.Int("x", **settings)
    codec, x = SearchSpaceCodec(hp), hp.space[0]
    assert codec.bucketed(x)
    for position in (0.0, 0.5, float(np.nextafter(1.0, 0.0))):
        assert codec.is_valid_value(x, codec.from_token(x, 9, position))
    hp.Choice("c", [1, 2])  # not bucketed: a position is refused all the same
    for position in (1.0, -0.1, math.nan):
        for name in ("x", "c"):
            with pytest.raises(ValueError, match=r"position must be in \[0, 1\)"):
                codec.from_token(next(h for h in hp.space if h.name == name), 0, position)


def test_bad_codec_settings_raise():
    with pytest.raises(ValueError, match="num_buckets"):
        SearchSpaceCodec(keras_tuner.HyperParameters(), num_buckets=1)
    with pytest.raises(ValueError, match="local_move_prob"):
        SearchSpaceCodec(keras_tuner.HyperParameters(), local_move_prob=1.5)


def test_step_floats_hash_to_one_string():
    hp = keras_tuner.HyperParameters()
    hp.Float("x", 0.1, 0.9, step=0.1)
    codec = SearchSpaceCodec(hp)
    values = {codec.sample(rng(i))["x"] for i in range(200)}
    assert values == {round(0.1 * k, 1) for k in range(1, 10)}
    assert all(not math.isnan(v) for v in values)


def test_wide_ranges_take_proportionate_local_moves():
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 1, 1024, sampling="log")
    codec = SearchSpaceCodec(hp, local_move_prob=1.0)
    r = rng(11)
    moves = [codec.mutate({"units": 32}, r)["units"] for _ in range(300)]
    ratios = np.abs(np.log2(np.array(moves) / 32))
    # Log-aware: a move is a fraction of the ten octaves, not +-1 unit.
    assert all(m != 32 and 1 <= m <= 1024 for m in moves)
    assert 0.3 < np.median(ratios) < 2.0


def test_mutating_an_int_range_wider_than_int64_draws_stays_in_it():
    # Was (a review's finding): numpy's int64 draw raised, ending evolution's search.
    space = keras_tuner.HyperParameters()
    space.Int("seed", 0, 2**64)
    codec = SearchSpaceCodec(space)
    (hp,) = space.space
    rng = np.random.default_rng(0)
    values = [codec.mutate_value(hp, 5, rng) for _ in range(200)]
    assert all(0 <= v <= 2**64 and v != 5 for v in values)
    assert max(values) > 2**63  # the whole range, not int64's part of it
    # ... and the codec takes them as values of the range (was: float division in its
    # index check refused most, and `mutate` replaced them by prior draws).
    assert all(codec.is_valid({"seed": v}) for v in values)
