"""The conformance suite every metanas oracle passes.

Each ``check_*`` function takes an oracle *factory* — a callable taking the
keras-tuner constructor arguments (``objective``, ``max_trials``, ``seed``,
``hyperparameters``, ...) and returning a fresh oracle — and raises
AssertionError when a guarantee is broken. `test_conformance.py` runs every
check over `ORACLE_FACTORIES`; a new strategy adds its factory there.

The oracles are driven exactly as keras-tuner drives them (``create_trial``,
``update_trial``, ``end_trial``), on synthetic objectives, without training.
"""

from __future__ import annotations

import json
import math
import random
from typing import Callable, Dict, List, Optional

import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from metanas.tuners import (
    EvolutionOracle,
    RandomSearchOracle,
    RLControllerOracle,
    SearchSpaceCodec,
)

Factory = Callable[..., keras_tuner.Oracle]
TrialStatus = trial_module.TrialStatus

ORACLE_FACTORIES: Dict[str, Factory] = {
    "random": lambda **kw: RandomSearchOracle(**kw),
    "evolution-tournament": lambda **kw: EvolutionOracle(
        population_size=6, tournament_size=3, **kw
    ),
    "evolution-roulette": lambda **kw: EvolutionOracle(
        population_size=6, selection="roulette", crossover_rate=0.5, **kw
    ),
    "evolution-nsga2": lambda **kw: EvolutionOracle(
        population_size=6, selection="nsga2", aging=False, **kw
    ),
    "evolution-replace-worst": lambda **kw: EvolutionOracle(
        population_size=6, tournament_size=2, aging=False, mutation_rate=0.3, **kw
    ),
    "rl": lambda **kw: RLControllerOracle(num_initial_points=3, units=16, **kw),
    "rl-batched": lambda **kw: RLControllerOracle(
        num_initial_points=0, batch_size=4, reward_normalization="none", **kw
    ),
}

MAX = keras_tuner.Objective("score", "max")
MIN = keras_tuner.Objective("score", "min")


# ---------------------------------------------------------------- spaces
def nas_space() -> keras_tuner.HyperParameters:
    """Six edges choosing among five operations, as in a NAS-Bench-201 cell."""
    hp = keras_tuner.HyperParameters()
    for edge in range(6):
        hp.Choice(f"edge_{edge}", ["none", "skip", "conv1x1", "conv3x3", "avgpool"])
    return hp


def mixed_space() -> keras_tuner.HyperParameters:
    """Every hyperparameter kind, with conditions two levels deep."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("block", ["dense", "conv"])
    with hp.conditional_scope("block", ["dense"]):
        hp.Int("units", 8, 256, step=8)
        hp.Float("dropout", 0.0, 0.5, step=0.1)
    with hp.conditional_scope("block", ["conv"]):
        hp.Int("filters", 4, 128, sampling="log")
        hp.Boolean("batchnorm")
        with hp.conditional_scope("batchnorm", [True]):
            hp.Float("momentum", 0.5, 0.999, sampling="reverse_log")
    hp.Float("lr", 1e-5, 1e-1, sampling="log")
    hp.Choice("batch", [16, 32, 64], ordered=True)
    hp.Fixed("epochs", 3)
    return hp


def small_space() -> keras_tuner.HyperParameters:
    """Exactly 9 configurations: 3 x (False | True x 2)."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    hp.Boolean("b")
    with hp.conditional_scope("b", [True]):
        hp.Choice("c", ["x", "y"])
    return hp


def partly_infinite_space() -> keras_tuner.HyperParameters:
    """23 configurations, and a branch (a=23) with a continuous decision."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("a", list(range(24)))
    with hp.conditional_scope("a", [23]):
        hp.Float("lr", 0.1, 0.2)
    return hp


def nas_score(values: Dict) -> float:
    """A deterministic objective with interactions, best at all-conv3x3."""
    ops = {"none": 0.0, "skip": 0.3, "conv1x1": 0.6, "conv3x3": 1.0, "avgpool": 0.2}
    edges = [ops[values.get(f"edge_{e}", "none")] for e in range(6)]
    return float(sum(edges) + 0.5 * edges[0] * edges[5])


def generic_score(values: Dict) -> float:
    """Any configuration to a number, deterministically (for any space)."""
    text = json.dumps(values, sort_keys=True, default=str)
    return (int.from_bytes(text.encode()[-8:], "little") % 10_007) / 10_007


# ---------------------------------------------------------------- driving
def make(factory: Factory, tmp_path, *, name: str = "p", space=None, **kwargs):
    kwargs.setdefault("objective", MAX)
    kwargs.setdefault("max_trials", 30)
    kwargs.setdefault("seed", 1)
    oracle = factory(hyperparameters=space or nas_space(), **kwargs)
    oracle._set_project_dir(str(tmp_path), name)
    oracle.verbose = 0
    return oracle


def finish(oracle, trial, score: Optional[float], *, fail: bool = False) -> None:
    """Ends ``trial`` as a worker would: report the score, or fail it."""
    if fail:
        trial.status = TrialStatus.FAILED
        trial.message = "injected failure"
    else:
        oracle.update_trial(trial.trial_id, {oracle.objective.name: score})
        trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)


def drive(
    oracle,
    score: Callable[[Dict], float] = nas_score,
    *,
    trials: Optional[int] = None,
    fail: Callable[[int], bool] = lambda i: False,
) -> List[Dict]:
    """Runs trials one at a time until STOPPED (or ``trials``); returns their values."""
    seen = []
    while trials is None or len(seen) < trials:
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        values = dict(trial.hyperparameters.values)
        seen.append(values)
        finish(oracle, trial, score(values), fail=fail(len(seen) - 1))
    return seen


def json_state(oracle) -> Dict:
    """The oracle state through JSON; keras-tuner's ``tried_so_far`` set sorted."""
    state = json.loads(json.dumps(oracle.get_state()))
    state["tried_so_far"] = sorted(state["tried_so_far"])
    return state


# ---------------------------------------------------------------- checks
def check_seeded_determinism(factory: Factory, tmp_path) -> None:
    """Same seed, same trials, whatever the global random states; other seed, others."""
    runs = []
    for index, (seed, global_seed) in enumerate([(3, 0), (3, 12345), (4, 0)]):
        random.seed(global_seed)
        np.random.seed(global_seed)
        oracle = make(factory, tmp_path, name=f"det{index}", seed=seed, max_trials=25)
        runs.append(drive(oracle))
    assert runs[0] == runs[1], "same seed gave different trials"
    assert runs[0] != runs[2], "different seeds gave the same trials"


def check_state_round_trip(factory: Factory, tmp_path) -> None:
    """set_state(get_state()) through JSON loses nothing: the search goes on alike."""
    plain = make(factory, tmp_path, name="plain", max_trials=30)
    expected = drive(plain)
    oracle = make(factory, tmp_path, name="trip", max_trials=30)
    first = drive(oracle, trials=14)
    state = json_state(oracle)
    oracle.set_state(state)
    assert json_state(oracle) == state
    assert first + drive(oracle) == expected


def check_conditional_space(factory: Factory, tmp_path) -> None:
    """Every proposal holds exactly the active hyperparameters, each valid."""
    oracle = make(factory, tmp_path, space=mixed_space(), max_trials=40)
    codec = SearchSpaceCodec(oracle.hyperparameters)
    values = drive(oracle, generic_score)
    assert len(values) == 40
    for config in values:
        assert codec.is_valid(config), f"invalid or inactive values in {config}"
    assert {c["block"] for c in values} == {"dense", "conv"}
    # One name in two scopes (keras-tuner allows it): each trial keeps its branch's value.
    space = keras_tuner.HyperParameters()
    space.Choice("m", ["a", "b"])
    with space.conditional_scope("m", ["a"]):
        space.Choice("units", [1, 2])
    with space.conditional_scope("m", ["b"]):
        space.Choice("units", [3, 4, 5])
    oracle = make(factory, tmp_path, name="scopes", space=space, max_trials=40)
    values = drive(oracle, generic_score)
    models = {(v["m"], v["units"]) for v in values}
    assert models == {("a", 1), ("a", 2), ("b", 3), ("b", 4), ("b", 5)}, values


def check_growing_space(factory: Factory, tmp_path) -> None:
    """A hyperparameter registered mid-search is proposed, and varied, from then on."""
    oracle = make(factory, tmp_path, max_trials=40)
    later = []
    for index in range(40):
        trial = oracle.create_trial("tuner0")
        values = dict(trial.hyperparameters.values)
        if index == 8:  # the hypermodel reveals a new name while building
            trial.hyperparameters.Choice("late", ["a", "b", "c"])
        if index > 8:
            later.append(values)
        finish(oracle, trial, nas_score(values) + (values.get("late") == "c"))
    assert all(v.get("late") in ("a", "b", "c") for v in later), later[:3]
    assert len({v["late"] for v in later}) >= 2


def check_failed_trials(factory: Factory, tmp_path) -> None:
    """Failed trials (errors, NaN scores) are recorded, never best, never stop the search."""
    oracle = make(factory, tmp_path, max_trials=30, max_consecutive_failed_trials=5)
    values = []
    for index in range(30):
        trial = oracle.create_trial("tuner0")
        values.append(dict(trial.hyperparameters.values))
        if index % 4 == 1:
            finish(oracle, trial, None, fail=True)
        elif index % 4 == 2:
            finish(oracle, trial, math.nan)  # NaN loss: keras-tuner marks it failed
        else:
            finish(oracle, trial, nas_score(values[-1]))
    statuses = [oracle.trials[t].status for t in oracle.end_order]
    assert len(oracle.trials) == 30
    assert statuses.count(TrialStatus.FAILED) == sum(i % 4 in (1, 2) for i in range(30))
    best = oracle.get_best_trials(1)[0]
    assert best.status == TrialStatus.COMPLETED
    assert oracle.create_trial("tuner0").status == TrialStatus.STOPPED


def check_exhaustion(factory: Factory, tmp_path) -> None:
    """A finite space is used up without duplicates, then the search stops
    (after its race, for a strategy that races its finalists)."""
    oracle = make(factory, tmp_path, space=small_space(), max_trials=100)
    values = drive(oracle, generic_score)
    race = oracle.race_trials()
    assert len(values) == 9 + race, f"expected the 9 configurations, got {len(values)}"
    assert len({json.dumps(v, sort_keys=True) for v in values[:9]}) == 9
    assert oracle.create_trial("tuner0").status == TrialStatus.STOPPED
    # A space with a continuous branch is never used up, however rarely drawn.
    oracle = make(factory, tmp_path, name="infinite", space=partly_infinite_space(),
                  max_trials=60)
    values = drive(oracle, generic_score)
    assert len(values) == 60, f"stopped after {len(values)} of 60 trials"
    unique = values[:60 - oracle.race_trials()]
    assert len({json.dumps(v, sort_keys=True) for v in unique}) == len(unique)


def check_min_and_max(factory: Factory, tmp_path) -> None:
    """Maximising f and minimising -f search identically, and both improve."""
    up = drive(make(factory, tmp_path, name="max", objective=MAX, max_trials=30))
    down = drive(
        make(factory, tmp_path, name="min", objective=MIN, max_trials=30),
        lambda v: -nas_score(v),
    )
    assert up == down, "the strategy is not symmetric in the objective's direction"


def check_concurrent_proposals(factory: Factory, tmp_path) -> None:
    """Several trials open at once (several workers): no duplicates, exact total."""
    oracle = make(factory, tmp_path, max_trials=40)
    rng = np.random.default_rng(0)
    seen = []
    open_trials = []
    while True:
        while len(open_trials) < 4:
            trial = oracle.create_trial(f"tuner{len(seen)}")
            if trial.status == TrialStatus.STOPPED:
                break
            seen.append(dict(trial.hyperparameters.values))
            open_trials.append(trial)
        if not open_trials:
            break
        done = open_trials.pop(int(rng.integers(len(open_trials))))
        finish(oracle, done, nas_score(done.hyperparameters.values))
    assert len(seen) == 40
    # A final race (see `MetanasOracle.racing_fraction`) re-evaluates what the
    # search found; before it, no configuration is proposed twice.
    searched = [json.dumps(v, sort_keys=True) for v in seen[: 40 - oracle.race_trials()]]
    assert len(set(searched)) == len(searched)
    assert {json.dumps(v, sort_keys=True) for v in seen[len(searched):]} <= set(searched)
    assert len(oracle.end_order) == 40
    assert all(t.status == TrialStatus.COMPLETED for t in oracle.trials.values())


CHECKS = [
    check_seeded_determinism,
    check_state_round_trip,
    check_conditional_space,
    check_growing_space,
    check_failed_trials,
    check_exhaustion,
    check_min_and_max,
    check_concurrent_proposals,
]
