"""ParzenRatio, the TPE density ratio that ranks EvolutionOracle's candidate children."""

import numpy as np
import pytest

from metanas.tuners.surrogate import ParzenRatio, default_gamma


def test_good_split_is_optunas():
    assert [default_gamma(n) for n in (1, 10, 11, 100, 1000)] == [1, 1, 2, 10, 25]


def test_a_candidate_near_the_good_configurations_scores_higher():
    # Decision 0 ordered (10 tokens), decision 1 not (3 tokens). Good: high token 0, "b".
    rng = np.random.default_rng(0)
    tokens = np.stack([rng.integers(10, size=60), rng.integers(3, size=60)], axis=1)
    fitness = tokens[:, 0] + 5.0 * (tokens[:, 1] == 1)
    model = ParzenRatio([10, 3], [True, False]).fit(tokens, fitness)
    scores = model.score(np.array([[9, 1], [8, 1], [9, 0], [1, 1], [0, 2]]))
    assert scores[0] > scores[2] and scores[0] > scores[3] > scores[4]
    # Ordered: a neighbour of the good tokens is near them too, unlike under an unordered kernel.
    near = model.score(np.array([[8, 1]]))[0]
    assert near > scores[3]


def test_an_inactive_decision_matches_only_another_inactive_one():
    # Column 1 is active (tokens 0..3) only in the bad configurations; token 4 = inactive.
    tokens = np.array([[0, 4], [0, 4], [1, 0], [1, 1], [1, 2], [1, 3]] * 3)
    fitness = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0] * 3)
    model = ParzenRatio([2, 4], [False, True]).fit(tokens, fitness)
    inactive, active = model.score(np.array([[0, 4], [0, 0]]))
    assert inactive > active


def test_many_decisions_do_not_underflow_and_ties_keep_their_order():
    rng = np.random.default_rng(1)
    tokens = rng.integers(10, size=(40, 400))
    model = ParzenRatio([10] * 400, [False] * 400).fit(tokens, rng.random(40))
    scores = model.score(rng.integers(10, size=(5, 400)))
    assert np.all(np.isfinite(scores))
    # Tied fitness keeps the rows' order: the good set (4 of 40) is the first 4 tied best.
    fitness = np.tile([1.0, 0.0], 20)
    model = ParzenRatio([10] * 400, [False] * 400).fit(tokens, fitness)
    assert np.array_equal(model._good[1], tokens[[0, 2, 4, 6]])


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (([3, 2], [True]), {}, "one 'ordered' per decision: got 1 for 2 decisions"),
        (([3, 0], [True, True]), {}, r"cardinalities must be >= 1, got \[3, 0\]"),
        (([3], [True]), {"lam": 1.5}, r"lam must be in \[0, 1\], got 1.5"),
    ],
)
def test_bad_arguments_raise(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ParzenRatio(*args, **kwargs)
    with pytest.raises(ValueError, match="fit the model first"):
        ParzenRatio([3], [True]).score(np.array([[0]]))
