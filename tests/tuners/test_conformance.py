"""Runs the conformance suite over every oracle, and checks the suite itself."""

import json

import keras_tuner
import numpy as np
import pytest

from metanas.tuners import RandomSearchOracle
from tests.tuners import conformance
from tests.tuners.conformance import CHECKS, ORACLE_FACTORIES


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__[len("check_"):])
@pytest.mark.parametrize("name", sorted(ORACLE_FACTORIES))
def test_conformance(name, check, tmp_path):
    check(ORACLE_FACTORIES[name], tmp_path)


class SyntheticTuner(keras_tuner.Tuner):
    """A real keras-tuner Tuner whose trials score a formula instead of training.

    ``crash_at`` raises a FatalError inside that trial: the search dies mid-trial
    the way a killed process does (the trial is left RUNNING on disk).
    """

    def __init__(self, *args, crash_at=None, **kwargs):
        self.crash_at = crash_at
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        if self.crash_at is not None and len(self.oracle.trials) == self.crash_at + 1:
            raise keras_tuner.errors.FatalError("killed mid-trial")
        return {"score": conformance.nas_score(trial.hyperparameters.values)}


def build_nas(hp):
    for edge in range(6):
        hp.Choice(f"edge_{edge}", ["none", "skip", "conv1x1", "conv3x3", "avgpool"])
    return None


def strategy_state(oracle):
    """The oracle's state beyond keras-tuner's own (population, policy, rng...)."""
    base = set(keras_tuner.Oracle.get_state(oracle))
    return {k: v for k, v in oracle.get_state().items() if k not in base}


def run_tuner(factory, directory, project, *, overwrite, crash_at=None):
    oracle = factory(objective=conformance.MAX, max_trials=24, seed=5)
    tuner = SyntheticTuner(
        oracle=oracle, hypermodel=build_nas, directory=str(directory),
        project_name=project, overwrite=overwrite, crash_at=crash_at,
    )
    tuner.oracle.verbose = 0
    try:
        tuner.search()
    except keras_tuner.errors.FatalError:
        pass
    return tuner


@pytest.mark.parametrize("name", sorted(ORACLE_FACTORIES))
def test_resume_after_crash_restores_strategy_and_ends_exactly(name, tmp_path):
    factory = ORACLE_FACTORIES[name]
    whole = run_tuner(factory, tmp_path, "whole", overwrite=True)
    expected = [whole.oracle.trials[t].hyperparameters.values for t in whole.oracle.start_order]

    crashed = run_tuner(factory, tmp_path, "resumed", overwrite=True, crash_at=15)
    assert len(crashed.oracle.end_order) == 15
    saved = json.loads((tmp_path / "resumed" / "oracle.json").read_text())
    saved_strategy = {k: saved[k] for k in strategy_state(crashed.oracle)}

    resumed_oracle = factory(objective=conformance.MAX, max_trials=24, seed=5)
    resumed = SyntheticTuner(
        oracle=resumed_oracle, hypermodel=build_nas, directory=str(tmp_path),
        project_name="resumed", overwrite=False,
    )
    # Restored from disk, not re-drawn: the strategy state is the saved one.
    assert json.loads(json.dumps(strategy_state(resumed.oracle))) == saved_strategy
    resumed.oracle.verbose = 0
    resumed.search()
    oracle = resumed.oracle
    completed = [t for t in oracle.trials.values() if t.status == "COMPLETED"]
    assert len(completed) == 24 and len(oracle.end_order) == 24
    got = [oracle.trials[t].hyperparameters.values for t in oracle.start_order]
    assert got == expected, "the resumed search diverged from the uninterrupted one"


class GlobalRandomOracle(RandomSearchOracle):
    """A broken strategy: it draws from the global numpy state, not its seed."""

    def propose(self, trial_id):
        for _ in range(100):
            values = self.codec.sample(np.random.default_rng(np.random.randint(1 << 30)))
            if not self.is_duplicate(values):
                return values
        return None


class StatelessPopulationOracle(conformance.EvolutionOracle):
    """A broken strategy: its population is not part of its state."""

    def set_state(self, state):
        super().set_state(state)
        self.population = []


@pytest.mark.parametrize(
    "broken, check",
    [
        (GlobalRandomOracle, conformance.check_seeded_determinism),
        (StatelessPopulationOracle, conformance.check_state_round_trip),
    ],
)
def test_suite_catches_broken_strategies(broken, check, tmp_path):
    with pytest.raises(AssertionError):
        check(lambda **kw: broken(**kw), tmp_path)
