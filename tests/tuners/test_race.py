"""The final race: the last trials re-evaluate the best configurations."""

import math
import warnings

import numpy as np
import pytest

from metanas.tuners import (
    EvolutionOracle,
    RandomSearchOracle,
    RLControllerOracle,
    ShortNoiseCheckWarning,
)
from metanas.tuners.base import TrialStatus
from tests.tuners.conformance import MAX, finish, json_state, make, nas_score


def noisy_score(seed=0, scale=0.4):
    """nas_score plus Gaussian noise, as a training seed would add."""
    rng = np.random.default_rng(seed)
    return lambda values: nas_score(values) + float(rng.normal(0.0, scale))


def key(values):
    return tuple(sorted(values.items()))


def racing(tmp_path, name="race", **kwargs):
    kwargs.setdefault("max_trials", 40)
    kwargs.setdefault("racing_fraction", 0.25)
    kwargs.setdefault("finalists", 4)
    return make(lambda **kw: EvolutionOracle(population_size=6, **kw), tmp_path, name=name,
                **kwargs)


def test_the_last_trials_race_the_finalists_by_sequential_halving(tmp_path):
    oracle = racing(tmp_path)
    score = noisy_score()
    assert oracle.race_trials() == 10 and oracle.repeats_configurations
    observed = {}
    proposals = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        values = dict(trial.hyperparameters.values)
        # Before each race trial: the finalists' means and counts it was chosen from.
        means = {k: np.mean(v) for k, v in observed.items()}
        counts = {k: len(v) for k, v in observed.items()}
        proposals.append((key(values), means, counts))
        value = score(values)
        observed.setdefault(key(values), []).append(value)
        finish(oracle, trial, value)
    assert len(proposals) == 40
    search = [p[0] for p in proposals[:30]]
    assert len(set(search)) == 30  # no repeats while searching
    means_at_start = proposals[30][1]
    finalists = sorted(means_at_start, key=means_at_start.get, reverse=True)[:4]
    race = [p[0] for p in proposals[30:]]
    assert set(race) <= set(finalists)
    # Round 0 (race trials 0-4): every finalist, the least evaluated first.
    assert set(race[:4]) == set(finalists)
    # Round 1 (race trials 5-9): only the two best finalists by mean at the time.
    for config, means, counts in proposals[35:]:
        top_two = sorted(finalists, key=means.get, reverse=True)[:2]
        assert config in top_two
        assert counts[config] == min(counts[k] for k in top_two)
    # The incumbent: the best mean among the finalists evaluated about as often
    # as the most evaluated one (the last round's), whatever a lucky single
    # evaluation elsewhere says.
    counts = {k: len(observed[k]) for k in finalists}
    last_round = [k for k in finalists if counts[k] >= max(counts.values()) - 1]
    winner = max(last_round, key=lambda k: np.mean(observed[k]))
    best = oracle.get_best_trials(3)
    assert key(best[0].hyperparameters.values) == winner
    assert len({key(t.hyperparameters.values) for t in best}) == 3  # one trial per configuration
    lucky = max(observed, key=lambda k: max(observed[k]))
    if lucky != winner:
        assert max(observed[lucky]) > max(observed[winner])  # noise would have misled
    # The race lives in the state: a reloaded oracle ranks the same way.
    state = json_state(oracle)
    assert len(state["race"]) == 4
    reloaded = racing(tmp_path)  # the same project: keras-tuner's reload
    reloaded.reload()
    assert json_state(reloaded)["race"] == state["race"]
    assert [t.trial_id for t in reloaded.get_best_trials(3)] == [t.trial_id for t in best]


def test_parallel_workers_spread_over_the_finalists(tmp_path):
    oracle = racing(tmp_path)
    score = noisy_score(1)
    for _ in range(30):
        trial = oracle.create_trial("tuner0")
        finish(oracle, trial, score(dict(trial.hyperparameters.values)))
    running = [oracle.create_trial(f"tuner{i}") for i in range(4)]
    configs = [key(t.hyperparameters.values) for t in running]
    assert len(set(configs)) == 4  # a running evaluation counts: no two workers on one finalist
    for trial in running:
        finish(oracle, trial, score(dict(trial.hyperparameters.values)))
    assert oracle.get_best_trials(1)[0].status == TrialStatus.COMPLETED


def test_a_search_without_a_race_is_unchanged(tmp_path):
    plain = make(lambda **kw: EvolutionOracle(population_size=6, **kw), tmp_path, name="p",
                 max_trials=40, racing_fraction=0.0)
    assert plain.race_trials() == 0 and not plain.repeats_configurations
    score = noisy_score(2)
    trials = []
    while (trial := plain.create_trial("tuner0")).status != TrialStatus.STOPPED:
        trials.append(trial)
        finish(plain, trial, score(dict(trial.hyperparameters.values)))
    assert len({key(t.hyperparameters.values) for t in trials}) == 40
    assert plain.get_best_trials(1)[0].score == max(t.score for t in trials)
    # Without max_trials there is no end to race at.
    assert make(EvolutionOracle, tmp_path, name="open", max_trials=None).race_trials() == 0


@pytest.mark.parametrize("racing_fraction", [0.3, 0.0])
def test_a_space_used_up_before_the_race_races_then_stops(tmp_path, racing_fraction):
    import keras_tuner

    space = keras_tuner.HyperParameters()
    space.Choice("edge_0", ["none", "skip", "conv1x1"])
    space.Choice("edge_1", ["none", "skip", "conv1x1", "avgpool"])

    def oracle_():
        return make(lambda **kw: EvolutionOracle(population_size=4, **kw), tmp_path,
                    space=space, max_trials=30, racing_fraction=racing_fraction, finalists=4)

    oracle = oracle_()
    score = noisy_score(3)
    trials = []
    while (trial := oracle.create_trial("tuner0")).status != TrialStatus.STOPPED:
        trials.append(trial)
        finish(oracle, trial, score(dict(trial.hyperparameters.values)))
    keys = [key(t.hyperparameters.values) for t in trials]
    assert len(set(keys[:12])) == 12  # every configuration once
    # Finished short of max_trials, and known as such once reloaded (a chief run
    # again on it ends at once); a larger max_trials on resume reopens it.
    assert json_state(oracle)["ran_out"] == [len(trials), 30, oracle.race_trials()]
    reloaded = oracle_()
    reloaded.reload()
    assert oracle.search_finished() and reloaded.search_finished()
    # Not with a larger max_trials, nor another race (it would race, or race longer).
    for settings in ({"max_trials": 40, "racing_fraction": racing_fraction},
                     {"max_trials": np.int64(30), "racing_fraction": 0.5}):
        other = make(lambda **kw: EvolutionOracle(population_size=4, **kw), tmp_path,
                     space=space, finalists=4, **settings)
        other.reload()
        assert not other.search_finished()
    with pytest.raises(ValueError, match=r"'ran_out': expected None or \[trial count, "
                                         r"max_trials, race trials\], got 'x'"):
        oracle_().set_state({**json_state(oracle), "ran_out": "x"})
    if not racing_fraction:  # no race asked for: the search ends there, as before
        assert len(trials) == 12
        return
    # It used to stop there too, returning the luckiest single score: now the
    # race it planned for its last 9 trials runs at once (4 finalists, 2 rounds),
    # and the search ends with it rather than spend the rest of max_trials.
    assert len(trials) == 12 + 9 and oracle.race_trials() == 9
    assert len(set(keys[12:])) == 4 and set(keys[12:16]) == set(keys[12:])
    best = oracle.get_best_trials(1)[0]
    assert len(oracle.evaluations_of(best.trial_id)) >= 3
    # Kept in the state: a reloaded oracle has the same (finished) race.
    state = json_state(oracle)
    assert state["exhausted_at"] == 12
    again = oracle_()
    again.reload()
    assert json_state(again)["race"] == state["race"] != []
    assert again.create_trial("tuner0").status == TrialStatus.STOPPED


def test_a_space_is_not_used_up_while_a_trial_still_runs(tmp_path):
    # A running trial's model may register more hyperparameters as it ends:
    # the race waits for it (the asking worker is told to stop or wait).
    import keras_tuner

    space = keras_tuner.HyperParameters()
    space.Choice("edge_0", ["none", "skip", "conv1x1"])
    space.Choice("edge_1", ["none", "skip", "conv1x1", "avgpool"])
    oracle = make(lambda **kw: EvolutionOracle(population_size=4, **kw), tmp_path,
                  space=space, max_trials=30, racing_fraction=0.3, finalists=4)
    score = noisy_score(4)
    for _ in range(11):
        trial = oracle.create_trial("tuner0")
        finish(oracle, trial, score(dict(trial.hyperparameters.values)))
    last = oracle.create_trial("tuner1")  # the 12th and last configuration, running
    assert oracle.create_trial("tuner2").status == TrialStatus.STOPPED
    assert oracle._exhausted_at is None and not oracle.search_finished()
    finish(oracle, last, score(dict(last.hyperparameters.values)))
    raced = oracle.create_trial("tuner2")
    assert raced.status == TrialStatus.RUNNING and oracle._exhausted_at == 12
    assert oracle.evaluations_of(raced.trial_id)  # a finalist, evaluated before


def test_defaults_race_for_evolution_on_a_single_objective_only():
    evolution = EvolutionOracle(objective=MAX, max_trials=100)
    assert (evolution.racing_fraction, evolution.finalists) == (
        EvolutionOracle.default_racing_fraction, EvolutionOracle.default_finalists)
    assert evolution.race_trials() == int(100 * EvolutionOracle.default_racing_fraction) > 0
    assert RandomSearchOracle(objective=MAX, max_trials=100).race_trials() == 0
    assert RLControllerOracle(objective=MAX, max_trials=100).race_trials() == 0
    pareto = EvolutionOracle(objective=["val_loss", "val_accuracy"], selection="nsga2")
    assert pareto.racing_fraction == 0.0
    space = EvolutionOracle.settings_space()
    assert space["racing_fraction"].default == EvolutionOracle.default_racing_fraction
    assert space["finalists"].default == EvolutionOracle.default_finalists
    assert RandomSearchOracle.settings_space()["racing_fraction"].default == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"racing_fraction": 0.9}, r"racing_fraction must be a number in \[0, 0.9\) or None, got 0.9"),
        ({"racing_fraction": -0.1}, r"racing_fraction must be a number in \[0, 0.9\) or None, got -0.1"),
        ({"racing_fraction": True}, "racing_fraction must be a number .* got True"),
        ({"racing_fraction": "half"}, "racing_fraction must be a number .* got 'half'"),
        ({"finalists": 1}, "finalists must be an int >= 2, got 1"),
        ({"objective": ["val_loss", "val_accuracy"], "selection": "nsga2",
          "racing_fraction": 0.1}, "racing_fraction=0.1 needs a single objective"),
        ({"noisy_racing_fraction": 0.9},
         r"noisy_racing_fraction must be a number in \[0, 0.9\) or None, got 0.9"),
        ({"noisy_racing_fraction": "x"}, "noisy_racing_fraction must be a number .* got 'x'"),
        ({"racing_fraction": 0.3, "noisy_racing_fraction": 0.2},
         r"noisy_racing_fraction must be at least racing_fraction \(0.3\), got 0.2"),
        ({"objective": ["val_loss", "val_accuracy"], "selection": "nsga2",
          "noisy_racing_fraction": 0.2}, "noisy_racing_fraction=0.2 needs a single objective"),
        ({"noisy_racing_fraction": 0.4, "finalists": 2},
         r"noisy_racing_fraction=0.4 checks .* needs finalists >= 3, got 2"),
    ],
)
def test_bad_race_settings_raise_value_error_naming_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EvolutionOracle(**kwargs)


def test_a_bad_race_in_a_saved_state_is_a_clear_error(tmp_path):
    oracle = racing(tmp_path)
    state = json_state(oracle)
    state["race"] = "abc"
    with pytest.raises(ValueError, match="'race': expected a list of configuration hashes"):
        oracle.set_state(state)
    assert math.isfinite(oracle.racing_fraction)



def test_the_race_winner_outranks_a_lucky_single_evaluation(tmp_path):
    # Every race evaluation scores 0 (the finalists' first scores were luck):
    # their means fall below configurations evaluated once, which never raced
    # and still rank after the race's winner.
    oracle = racing(tmp_path, max_trials=20, racing_fraction=0.3, finalists=4)
    observed = {}
    index = 0
    while (trial := oracle.create_trial("tuner0")).status != TrialStatus.STOPPED:
        values = dict(trial.hyperparameters.values)
        value = nas_score(values) if index < 14 else 0.0
        observed.setdefault(key(values), []).append(value)
        finish(oracle, trial, value)
        index += 1
    raced = {k for k, v in observed.items() if len(v) > 1}
    by_mean = max(observed, key=lambda k: np.mean(observed[k]))
    assert by_mean not in raced  # the scenario holds
    best = oracle.get_best_trials(len(observed))
    ranked = [key(t.hyperparameters.values) for t in best]
    assert set(ranked[: len(raced)]) == raced
    counts = {k: len(observed[k]) for k in raced}
    last_round = [k for k in raced if counts[k] >= max(counts.values()) - 1]
    assert ranked[0] == max(last_round, key=lambda k: np.mean(observed[k]))


def test_a_resumed_search_with_a_larger_budget_searches_on_and_races_again(tmp_path):
    oracle = racing(tmp_path, max_trials=20, racing_fraction=0.25)  # races trials 15-19
    score = noisy_score(3)
    observed, order = {}, []

    def run_until_stopped():
        while (trial := oracle.create_trial("tuner0")).status != TrialStatus.STOPPED:
            values = dict(trial.hyperparameters.values)
            value = score(values)
            observed.setdefault(key(values), []).append(value)
            order.append((key(values), {k: np.mean(v) for k, v in observed.items()}))
            finish(oracle, trial, value)

    run_until_stopped()
    first_race = set(json_state(oracle)["race"])
    oracle.max_trials = 40  # the user asks for more: the race moves to trials 30-39
    run_until_stopped()
    assert len(order) == 40
    seen_before = {k for k, _ in order[:20]}
    assert not {k for k, _ in order[20:30]} & seen_before  # searching again, new configurations
    means = order[29][1]  # after trial 29, when the new race began
    finalists = sorted(means, key=means.get, reverse=True)[:4]
    assert {k for k, _ in order[30:]} <= set(finalists)
    state = json_state(oracle)
    assert state["race_start"] == 30 and set(state["race"]) != first_race


def test_a_search_resumed_without_its_race_ranks_by_score_again(tmp_path):
    oracle = racing(tmp_path, max_trials=20, racing_fraction=0.3, finalists=4)
    index = 0
    while (trial := oracle.create_trial("tuner0")).status != TrialStatus.STOPPED:
        # The race's evaluations score 0: its winner is far from the best score.
        finish(oracle, trial, nas_score(trial.hyperparameters.values) if index < 14 else 0.0)
        index += 1
    best_score = max(t.score for t in oracle.trials.values())
    assert oracle.get_best_trials(1)[0].score < best_score  # the race decides
    resumed = racing(tmp_path, max_trials=20, racing_fraction=0.0)
    resumed.reload()
    assert resumed.get_best_trials(1)[0].score == best_score
    assert json_state(resumed)["race"] == []


@pytest.mark.parametrize("max_trials", [1, 3, 10, 30])  # 1, 3: a race of 0 trials
def test_a_finished_race_keeps_its_winner_when_reopened_with_another_budget(tmp_path,
                                                                             max_trials):
    # Was (a review's finding): reopening with another max_trials (10 is the
    # tuners' default: reopening only to load the best model) dropped the race,
    # and the luckiest single score became the search's answer.
    oracle = racing(tmp_path, max_trials=20, racing_fraction=0.3, finalists=4)
    index = 0
    while (trial := oracle.create_trial("tuner0")).status != TrialStatus.STOPPED:
        finish(oracle, trial, nas_score(trial.hyperparameters.values) if index < 14 else 0.0)
        index += 1
    winner = oracle.get_best_trials(1)[0]
    assert winner.score < max(t.score for t in oracle.trials.values())  # the race decides
    resumed = racing(tmp_path, max_trials=max_trials, racing_fraction=0.3, finalists=4)
    resumed.reload()
    assert resumed.get_best_trials(1)[0].trial_id == winner.trial_id
    resumed.save()  # and after one more save and reload
    again = racing(tmp_path, max_trials=max_trials, racing_fraction=0.3, finalists=4)
    again.reload()
    assert again.get_best_trials(1)[0].trial_id == winner.trial_id
    # An oracle reopened without max_trials (only to load the best model) too.
    endless = racing(tmp_path, max_trials=None, racing_fraction=0.3, finalists=4)
    endless.reload()
    assert endless.get_best_trials(1)[0].trial_id == winner.trial_id


def layers_space():
    """The README's growing space: widths registered by the model, outside any scope."""
    import keras_tuner

    space = keras_tuner.HyperParameters()
    build_layers(space)
    return space


def build_layers(hp):
    for i in range(hp.Int("layers", 1, 3)):
        hp.Choice(f"units_{i}", [16, 32, 64])


def run_growing(tmp_path, name, **kwargs):
    """A search whose model registers widths as it builds, with a noiseless score."""
    import random

    oracle = make(lambda **kw: EvolutionOracle(population_size=4, **kw), tmp_path, name=name,
                  space=layers_space(), **kwargs)
    random.seed(name)  # keras-tuner draws from the global random; the search must not
    trained = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            return oracle, trained
        build_layers(trial.hyperparameters)  # registers units_1, units_2 when used
        values = dict(trial.hyperparameters.values)
        trained.append(values)
        finish(oracle, trial, {1: 0.9, 2: 0.8, 3: 0.3}[values["layers"]] + values["units_0"] / 1e3)


@pytest.mark.parametrize("setting", [dict(racing_fraction=0.3, finalists=2),
                                     dict(racing_fraction=0.0, incumbent_evaluations=3)])
def test_evaluations_again_count_for_their_configuration_when_the_space_grew(tmp_path, setting):
    # The first configuration ran before units_1/units_2 existed. Evaluating it
    # again must credit it (not a new configuration filled at random), and must
    # not depend on Python's global random.
    first = {"layers": 1, "units_0": 64}
    oracle, trained = run_growing(tmp_path, "a", max_trials=20, initial_hps=[
        first, {"layers": 3, "units_0": 16}], **setting)
    _, again = run_growing(tmp_path, "b", max_trials=20, initial_hps=[
        first, {"layers": 3, "units_0": 16}], **setting)
    assert trained == again  # other global random draws, the same search
    groups = oracle._config_fitness()
    credited = groups[oracle._id_to_hash[oracle.start_order[0]]]
    assert len(credited) >= 3  # was 1: each evaluation again counted as a new configuration
    reruns = [t for t, k in oracle._repeat_of.items() if k == oracle._id_to_hash["00"]]
    assert all(trained[int(t)] == dict(first, units_1=16, units_2=16) for t in reruns)  # defaults
    best = oracle.get_best_trials(1)[0]
    assert {k: best.hyperparameters.values[k] for k in first} == first
    # Its scores, for users: the configuration's every evaluation, which its mean ranks by.
    scores = oracle.evaluations_of(best.trial_id)
    assert len(scores) == len(credited) and oracle.evaluations_of(oracle.start_order[0]) == scores
    assert np.mean(scores) == oracle.config_fitness(best) and best.score == max(scores)
    with pytest.raises(ValueError, match="trial_id 'nope' is not a trial of this search"):
        oracle.evaluations_of("nope")
    # Reloaded, the repeats keep their configuration's hash.
    reloaded = make(lambda **kw: EvolutionOracle(population_size=4, **kw), tmp_path, name="a",
                    space=layers_space(), max_trials=20, **setting)
    reloaded.reload()
    assert reloaded._config_fitness() == groups


def test_per_configuration_means_are_extended_as_trials_end_not_rebuilt(tmp_path):
    oracle = make(lambda **kw: EvolutionOracle(population_size=4, incumbent_evaluations=2, **kw),
                  tmp_path, max_trials=40)
    kept = None
    for step in range(40):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        finish(oracle, trial, nas_score(trial.hyperparameters.values) + 0.01 * step)
        groups = {}
        for trial_id in oracle.end_order:  # what a rebuild from every trial gives
            groups.setdefault(oracle._id_to_hash[trial_id], []).append(
                oracle.fitness(oracle.trials[trial_id]))
        assert oracle._config_fitness() == groups
        assert oracle._config_means() == {k: float(np.mean(v)) for k, v in groups.items()}
        kept = kept or oracle._config_fitness()
        assert oracle._config_fitness() is kept  # extended in place (a rebuild is O(trials))
    assert any(len(v) > 1 for v in groups.values())  # configurations were evaluated again


# ------------------------------------------------------------- noise check
def checking(tmp_path, name="check", **kwargs):
    """A search of 40 trials whose race begins at trial 24 (40%) and checks the noise."""
    kwargs.setdefault("max_trials", 40)
    kwargs.setdefault("finalists", 4)
    return make(lambda **kw: EvolutionOracle(population_size=6, **kw), tmp_path, name=name,
                racing_fraction=0.1, noisy_racing_fraction=0.4, **kwargs)


def run_checking(oracle, score_again):
    """Runs to the end: a first evaluation scores `nas_score`, an evaluation
    again ``score_again(values)``; returns the configurations in order."""
    order, seen = [], set()
    while (trial := oracle.create_trial("tuner0")).status != TrialStatus.STOPPED:
        values = dict(trial.hyperparameters.values)
        order.append(key(values))
        finish(oracle, trial, score_again(values) if key(values) in seen else nas_score(values))
        seen.add(key(values))
    return order


def test_scores_that_repeat_end_the_early_race_and_the_search_goes_on(tmp_path):
    oracle = checking(tmp_path)
    assert oracle.race_trials() == 16 and oracle.noise_check is None
    order = run_checking(oracle, nas_score)  # a second evaluation repeats the first
    assert len(order) == 40
    assert len(set(order[:24])) == 24
    # Trials 24-27: each of the 4 best configurations once more (the check).
    # (By score: two configurations may tie, and a set's order breaks ties by hash.)
    best = sorted((nas_score(dict(k)) for k in set(order[:24])), reverse=True)[:4]
    assert len(set(order[24:28])) == 4
    assert sorted((nas_score(dict(k)) for k in order[24:28]), reverse=True) == best
    assert oracle.noise_check["noisy"] is False
    assert oracle.noise_check["correlation"] == pytest.approx(1.0)
    # Then new configurations until the final race of 10% (trials 36-39).
    assert len(set(order[28:36])) == 8 and not set(order[28:36]) & set(order[:28])
    assert set(order[36:]) <= set(order[:36]) and oracle.race_trials() == 4
    diagnostics = oracle.strategy_diagnostics()
    assert diagnostics["race/noisy"] == 0.0
    assert diagnostics["race/repeat_correlation"] == pytest.approx(1.0)
    # The outcome lives in the state: a reloaded search plans the same race.
    state = json_state(oracle)
    assert state["noise_check"] == oracle.noise_check
    reloaded = checking(tmp_path)
    reloaded.reload()
    assert reloaded.noise_check == oracle.noise_check and reloaded.race_trials() == 4
    assert json_state(reloaded)["race"] == state["race"]


def test_scores_that_do_not_repeat_race_to_the_end(tmp_path):
    oracle = checking(tmp_path)
    # Again, the best first scores come last: the first order was noise.
    order = run_checking(oracle, lambda values: -nas_score(values))
    assert oracle.noise_check["noisy"] is True
    assert oracle.noise_check["correlation"] == pytest.approx(-1.0)
    assert oracle.race_trials() == 16
    assert len(set(order[:24])) == 24 and set(order[24:]) <= set(order[:24])
    assert oracle.strategy_diagnostics()["race/noisy"] == 1.0
    best = oracle.get_best_trials(1)[0]
    assert key(best.hyperparameters.values) in set(order[24:])


@pytest.mark.filterwarnings("ignore::metanas.tuners.ShortNoiseCheckWarning")  # 12 of 16
def test_every_finalist_is_evaluated_again_before_the_race_halves(tmp_path):
    # 12 finalists in a 16-trial race: sequential halving alone would give
    # only 4 of them a second evaluation (round 0 of 4), and the check none.
    oracle = checking(tmp_path, finalists=12)
    order = run_checking(oracle, nas_score)
    assert len(set(order[24:36])) == 12 and set(order[24:36]) <= set(order[:24])
    assert oracle.noise_check["noisy"] is False and oracle.noise_check["trial"] == 36
    assert oracle.race_trials() == 4 and set(order[36:]) <= set(order[:36])


def test_finalists_that_fail_again_send_the_search_on(tmp_path):
    oracle = checking(tmp_path, max_consecutive_failed_trials=10)
    order, seen = [], set()
    while (trial := oracle.create_trial("tuner0")).status != TrialStatus.STOPPED:
        values = dict(trial.hyperparameters.values)
        again = key(values) in seen
        order.append(key(values))
        seen.add(key(values))
        finish(oracle, trial, nas_score(values), fail=again and len(order) <= 28)
    assert len(order) == 40 and set(order[24:28]) <= set(order[:24])
    assert oracle.noise_check == {"correlation": None, "noisy": False, "trial": 28}
    assert not set(order[28:36]) & set(order[:28])  # new configurations, not a doomed race


def test_scores_that_do_not_vary_count_as_noise(tmp_path):
    oracle = checking(tmp_path, max_trials=30)
    order = run_checking(oracle, lambda values: 0.5)
    assert oracle.noise_check == {"correlation": None, "noisy": True,
                                  "trial": oracle.noise_check["trial"]}
    assert set(order[18:]) <= set(order[:18])


def test_the_noise_check_is_off_unless_asked_for():
    evolution = EvolutionOracle(objective=MAX, max_trials=100)
    assert evolution.noisy_racing_fraction == evolution.racing_fraction == 0.3
    assert evolution.race_trials() == 30
    assert EvolutionOracle.settings_space()["noisy_racing_fraction"].default == 0.3
    asked = EvolutionOracle(objective=MAX, max_trials=100, noisy_racing_fraction=0.4)
    assert (asked.racing_fraction, asked.race_trials()) == (0.3, 40)
    # A race the user sets is the race they get: no check.
    given = EvolutionOracle(objective=MAX, max_trials=100, racing_fraction=0.2)
    assert given.noisy_racing_fraction == 0.2 and given.race_trials() == 20
    assert EvolutionOracle(objective=MAX, racing_fraction=0.0).noisy_racing_fraction == 0.0
    assert RandomSearchOracle(objective=MAX, max_trials=100).noisy_racing_fraction == 0.0
    pareto = EvolutionOracle(objective=["val_loss", "val_accuracy"], selection="nsga2")
    assert pareto.noisy_racing_fraction == 0.0
    # The meta-layer's values: a noisy race never shorter than the plain one.
    kwargs = EvolutionOracle.settings_from_params(
        {"racing_fraction": 0.3, "noisy_racing_fraction": 0.1, "population_size": 10})
    assert kwargs["noisy_racing_fraction"] == 0.3
    EvolutionOracle(objective=MAX, **kwargs)
    few = EvolutionOracle.settings_from_params(
        {"racing_fraction": 0.1, "noisy_racing_fraction": 0.5, "finalists": 2})
    assert few["noisy_racing_fraction"] == 0.1  # too few finalists to check: no check
    EvolutionOracle(objective=MAX, **few)


def test_a_noise_check_too_short_to_run_is_a_warning_and_a_plain_race(tmp_path):
    # 40% of 10 trials is 4: too few to evaluate 8 finalists again.
    with pytest.warns(ShortNoiseCheckWarning, match=r"noisy_racing_fraction=0.4 of max_trials="
                      r"10 is 4 trials, fewer than the 8 the noise check needs"):
        oracle = checking(tmp_path, max_trials=10, finalists=8)
    order = run_checking(oracle, nas_score)
    assert oracle.noise_check is None and len(order) == 10
    assert set(order[6:]) <= set(order[:6])  # the last 4 trials raced
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShortNoiseCheckWarning)
        checking(tmp_path, name="long enough", max_trials=40, finalists=4)  # 16 trials
        EvolutionOracle(objective=MAX, noisy_racing_fraction=0.4)  # no max_trials


def test_a_noise_check_that_can_free_no_trial_is_a_warning():
    # Was silent (a review's finding): 40% of 30 trials is 12, the check takes 8
    # of them, and the final race 9 of the 4 left: a calm verdict frees none.
    with pytest.warns(ShortNoiseCheckWarning, match=r"noisy_racing_fraction=0.4 of max_trials="
                      r"30 is 12 trials: after the noise check's 8, no more than the final "
                      r"race's 9, so a calm verdict frees no trial"):
        EvolutionOracle(objective=MAX, max_trials=30, noisy_racing_fraction=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShortNoiseCheckWarning)
        EvolutionOracle(objective=MAX, max_trials=100, noisy_racing_fraction=0.4)


def test_a_bad_noise_check_in_a_saved_state_is_a_clear_error(tmp_path):
    oracle = checking(tmp_path)
    state = json_state(oracle)
    state["noise_check"] = {"noisy": "maybe"}
    with pytest.raises(ValueError, match="'noise_check': expected None or"):
        oracle.set_state(state)


def test_a_numpy_max_trials_is_saved_as_an_int(tmp_path):
    # Was kept as numpy's: the state of a space used up (ran_out holds it) was no
    # JSON, and the search died as it ended, and again on every resume.
    import keras_tuner

    space = keras_tuner.HyperParameters()
    space.Choice("edge_0", ["none", "skip", "conv1x1"])
    oracle = make(lambda **kw: EvolutionOracle(population_size=2, **kw), tmp_path,
                  space=space, max_trials=np.int64(10), seed=np.int64(3))
    while (trial := oracle.create_trial("tuner0")).status != TrialStatus.STOPPED:
        finish(oracle, trial, 1.0)
    assert type(oracle.max_trials) is int and type(oracle.seed) is int
    assert json_state(oracle)["ran_out"][1] == 10
