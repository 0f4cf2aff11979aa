"""Defects found walking through the meta-layer as a user would, on small data."""

from __future__ import annotations

import math
import warnings
from typing import Dict

import keras_tuner
import numpy as np
import optuna
import pytest

from metanas.meta import MetaLearner, MetaTask, TransferStore, dataset_features
from metanas.meta.learner import PROCESS_KEY, default_recommendation
from metanas.tuners import EvolutionOracle, SearchSpaceCodec
from tests.meta.test_abandoned_meta_trials import ON_LINUX, age, child
from tests.tuners.conformance import drive, make

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: `metanas.meta.learner.RETRY_KEY` (spelt out: the module must import on the code before it).
RETRY_KEY = "retry_of"
FEATURES = {"log_samples": 2.2, "modality": "tabular", "task_type": "classification"}


def units_space(low: int, high: int) -> keras_tuner.HyperParameters:
    """Two decisions; ``units`` over ``low..high``."""
    hp = keras_tuner.HyperParameters()
    hp.Int("units", low, high, step=8)
    hp.Choice("act", ["relu", "tanh"])
    return hp


def units_score(values: Dict) -> float:
    return float(values["units"]) + (1.0 if values["act"] == "relu" else 0.0)


def finished_search(tmp_path, name: str, space: keras_tuner.HyperParameters) -> EvolutionOracle:
    oracle = make(lambda **kw: EvolutionOracle(population_size=4, **kw), tmp_path, name=name,
                  space=space, max_trials=8, seed=3)
    drive(oracle, units_score)
    return oracle


@pytest.mark.parametrize("bad", [math.nan, math.inf, None, True, [1.0]])
def test_a_task_with_a_non_finite_feature_is_refused_before_it_poisons_the_storage(
        tmp_path, bad) -> None:
    # Recorded, {"log_samples": nan} made every later recommend() on the storage
    # raise "meta-feature 'log_samples' must be a finite number, got nan".
    with pytest.raises(ValueError, match=r"MetaTask 'mine': meta-feature 'log_samples' must be "
                                         r"a finite number, got"):
        MetaTask("mine", {"log_samples": bad, "modality": "tabular"})
    with pytest.raises(ValueError, match=r"meta-feature 'my_score' must be a finite number or a "
                                         r"string"):
        MetaTask("mine", {"my_score": bad})
    with pytest.raises(ValueError, match=r"meta-feature 'log_samples' must be a finite number"):
        MetaTask("mine", {"log_samples": "2.2"})  # compared as a label: 0 or 1 apart
    with pytest.raises(ValueError, match=r"meta-feature 'modality' must be one of \["):
        MetaTask("mine", {"modality": 1.0})
    assert MetaTask("mine", {"my_score": np.float32(0.5), "domain": "audio"}).name == "mine"
    learner = MetaLearner(f"sqlite:///{tmp_path}/meta.db")
    learner.record(task=MetaTask("ok", FEATURES), strategy="evolution",
                   params=default_recommendation().params, score=0.3)
    assert learner.recommend(FEATURES).source == "similar tasks: ok"


@pytest.mark.parametrize("bad", [math.nan, math.inf, "0.3", None, True])
def test_record_names_a_bad_score(tmp_path, bad) -> None:
    learner = MetaLearner(f"sqlite:///{tmp_path}/meta.db")
    with pytest.raises(ValueError, match=r"score must be a finite number"):
        learner.record(task=MetaTask("t", FEATURES), strategy="evolution", params={}, score=bad)
    with pytest.raises(ValueError, match=r"task must be a MetaTask"):
        learner.record(task="t", strategy="evolution", params={}, score=0.1)
    assert learner.study.trials == []


def test_dataset_features_bad_shapes_are_value_errors() -> None:
    x = np.zeros((6, 3))
    with pytest.raises(ValueError, match=r"x must hold at least one array, got an empty dict"):
        dataset_features({})  # was StopIteration
    for y in (3, [None] * 6, np.zeros((6, 0))):  # were TypeError, TypeError, IndexError
        with pytest.raises(ValueError, match=r"y must hold a target .* for each of the 6 rows"):
            dataset_features(x, y)
    with pytest.raises(ValueError, match=r"y must hold at least one array"):
        dataset_features(x, {})
    assert dataset_features(x, np.eye(2)[[0, 1] * 3])["log_classes"] == pytest.approx(math.log10(2))


def test_no_warm_start_from_a_space_whose_names_are_defined_otherwise(tmp_path) -> None:
    store = TransferStore(MetaLearner(f"sqlite:///{tmp_path}/meta.db"))
    store.save(MetaTask("small", FEATURES), finished_search(tmp_path, "small", units_space(8, 64)))
    # The same names over other ranges: "units" 64 of 8..64 is no value of 128..1024.
    other = store.warm_start(FEATURES, hyperparameters=units_space(128, 1024))
    assert other.source is None and other.oracle_kwargs() == {}
    same = store.warm_start(FEATURES, hyperparameters=units_space(8, 64))
    assert same.source == "small" and same.elite[0] == {"units": 64, "act": "relu"}
    # By names only, the caller vouches for the space.
    assert store.warm_start(FEATURES, hyperparameters=["units", "act"]).source == "small"


def test_definitions_compare_floats_to_float32_precision() -> None:
    # keras-tuner keeps np.float32(1e-4) as 9.9999997e-05: the same range, which an
    # exact comparison called another space (no warm start, silently).
    from metanas.meta.transfer import _alike, space_config

    def lr_space(low) -> keras_tuner.HyperParameters:
        hp = keras_tuner.HyperParameters()
        hp.Float("lr", low, 1e-2, sampling="log")
        hp.Choice("flag", [True, False])
        return hp

    ours = space_config(lr_space(1e-4))
    assert _alike(space_config(lr_space(np.float32(1e-4))), ours)
    assert not _alike(space_config(lr_space(2e-4)), ours)
    assert not _alike({"choices": [1, 0]}, {"choices": [True, False]})  # bools are not ints


def test_an_elite_value_float32_near_a_choice_or_bound_is_that_value_here(tmp_path) -> None:
    # Definitions alike to float32's precision, but the elite's values (a float32
    # choice, a value on a float32 bound) are none here: they ran as random values
    # called a warm start, then (a first fix) the space started cold.
    from metanas.meta.transfer import space_config

    def space(choices, low) -> keras_tuner.HyperParameters:
        hp = keras_tuner.HyperParameters()
        hp.Choice("drop", choices)
        hp.Float("lr", low, 1e-2, sampling="log")
        return hp

    f32 = float(np.float32(0.1)), float(np.float32(0.5))
    theirs = space(list(f32), np.float32(1e-4))
    store = TransferStore(MetaLearner(f"sqlite:///{tmp_path}/meta.db"))
    store.put(MetaTask("f32", FEATURES), elite=[{"drop": f32[0], "lr": float(np.float32(1e-4))}],
              space=["drop", "lr"], strategy="EvolutionOracle", definitions=space_config(theirs))
    start = store.warm_start(FEATURES, hyperparameters=space([0.1, 0.5], 1e-4))
    assert start.source == "f32" and start.elite == [{"drop": 0.1, "lr": 1e-4}]
    same = store.warm_start(FEATURES, hyperparameters=theirs).elite  # (lr as stored)
    assert same[0]["drop"] == f32[0] and same[0]["lr"] == pytest.approx(float(np.float32(1e-4)))
    # A value that is no choice here, however near the definitions: a cold start.
    store.put(MetaTask("f32", FEATURES), elite=[{"drop": 0.3, "lr": 1e-3}],
              space=["drop", "lr"], strategy="EvolutionOracle", definitions=space_config(theirs))
    assert store.warm_start(FEATURES, hyperparameters=space([0.1, 0.5], 1e-4)).source is None


def test_an_elite_value_is_judged_by_the_declaration_active_for_it(tmp_path) -> None:
    # The legality check kept a name's last declaration only (units=32 of scope "a"
    # judged by scope "b": the same space started cold), then any declaration
    # (units=32 under model=b passed, and the oracle replaced it with a random value).
    from metanas.meta.transfer import _elite_here, space_config

    hp = keras_tuner.HyperParameters()
    hp.Choice("model", ["a", "b"])
    with hp.conditional_scope("model", ["a"]):
        hp.Int("units", 8, 64)
        hp.Float("drop", 0.0, 0.5)
    with hp.conditional_scope("model", ["b"]):
        hp.Int("units", 128, 1024)
    ours = space_config(hp)

    def here(*elite):
        return _elite_here({"elite": list(elite), "space_config": ours}, SearchSpaceCodec(hp),
                           ours)

    assert here({"model": "a", "units": 32}) == [{"model": "a", "units": 32}]
    assert here({"model": "b", "units": 512}) == [{"model": "b", "units": 512}]
    assert here({"model": "b", "units": 32}) is None
    # A value of a name inactive for it is dropped (as the oracle drops it), not judged.
    assert here({"model": "b", "units": 512, "drop": 0.9}) == [{"model": "b", "units": 512}]
    # Nothing of a configuration holds here (its parent missing): no elite.
    assert here({"units": 16, "drop": 0.1}) is None
    store = TransferStore(MetaLearner(f"sqlite:///{tmp_path}/meta.db"))
    store.put(MetaTask("scoped", FEATURES), elite=[{"model": "a", "units": 32}],
              space=["model", "units", "drop"], strategy="EvolutionOracle", definitions=ours)
    assert store.warm_start(FEATURES, hyperparameters=hp).source == "scoped"


def test_an_elite_value_on_a_bound_is_that_bound_in_a_float32_space() -> None:
    # The codec rounded a float32 bound (9.999999747378752e-05) to 12 digits, outside
    # its own range: an elite value on that bound could not be mapped onto it.
    from metanas.meta.transfer import _elite_here, space_config
    # (Not on a stepped range, whose grid values round alike: its bound stays valid.)
    stepped = keras_tuner.HyperParameters()
    stepped.Float("x", 1e-5, np.float32(5e-5), step=float(np.float32(5e-5)) / 1e-5,
                  sampling="log")
    x = stepped.space[0]
    assert SearchSpaceCodec(stepped).is_valid_value(
        x, SearchSpaceCodec(stepped).canonical_value(x, x.max_value))

    for low, high, value in [(1e-6, np.float32(1e-4), 1e-4), (np.float32(0.1), 0.9, 0.1),
                             (-1.0, np.float32(-0.1), -0.1), (np.float32(7e-5), 1e-2, 7e-5)]:
        hp = keras_tuner.HyperParameters()
        hp.Float("lr", low, high)
        ours = space_config(hp)
        (mapped,) = _elite_here({"elite": [{"lr": value}]}, SearchSpaceCodec(hp), ours)
        bound = float(np.float32(value))
        assert mapped["lr"] == pytest.approx(bound, rel=1e-9), (low, high, value)
        assert float(hp.space[0].min_value) <= mapped["lr"] <= float(hp.space[0].max_value)


def test_a_record_without_definitions_qualifies_only_if_its_elite_is_legal_here(tmp_path) -> None:
    store = TransferStore(MetaLearner(f"sqlite:///{tmp_path}/meta.db"))
    store.put(MetaTask("old", FEATURES), elite=[{"units": 16, "act": "tanh"}],
              space=["units", "act"], strategy="EvolutionOracle")
    assert store.warm_start(FEATURES, hyperparameters=units_space(8, 64)).source == "old"
    assert store.warm_start(FEATURES, hyperparameters=units_space(128, 1024)).source is None


@pytest.mark.parametrize("kwargs, match", [
    ({"hyperparameters": 3}, "hyperparameters must be a keras-tuner HyperParameters or a list"),
    ({"hyperparameters": "units"}, "hyperparameters must be a keras-tuner HyperParameters"),
    ({"hyperparameters": [1, 2]}, "hyperparameters must be a keras-tuner HyperParameters"),
    ({"exclude_tasks": "small"}, r"exclude_tasks must be a list of task names"),
])
def test_warm_start_names_a_bad_argument(tmp_path, kwargs, match) -> None:
    store = TransferStore(MetaLearner(f"sqlite:///{tmp_path}/meta.db"))
    store.put(MetaTask("small", FEATURES), elite=[{"units": 16, "act": "tanh"}],
              space=["units", "act"], strategy="EvolutionOracle")
    with pytest.raises(ValueError, match=match):
        store.warm_start(FEATURES, **kwargs)


def fake_evaluate(task: MetaTask, strategy: str, settings: Dict, seed: int) -> float:
    """A deterministic meta-objective: lower for a smaller population, plus seeded noise."""
    noise = np.random.default_rng([seed, len(task.name)]).normal(0.0, 0.01)
    return 0.2 + settings.get("population_size", 20) / 640.0 + float(noise)


def test_a_meta_training_on_other_tasks_runs_the_defaults_on_them(tmp_path) -> None:
    # The defaults' meta-trial on task "a" used to count for a meta-training on "bb":
    # the defaults never ran there, and recommend() for "bb" could test no candidate
    # ("candidates untested ... Meta-train again", which did not help).
    learner = MetaLearner(f"sqlite:///{tmp_path}/meta.db", seed=0)
    a = MetaTask("a", {"log_samples": 2.0, "modality": "tabular"})
    bb = MetaTask("bb", {"log_samples": 5.0, "modality": "image"})
    kwargs = dict(evaluate=fake_evaluate, strategies=["evolution"], seeds=(0, 1))
    learner.meta_train([a], n_trials=2, **kwargs)
    learner.meta_train([bb], n_trials=2, **kwargs)
    defaults = default_recommendation().params
    ran_on = [sorted(t.user_attrs["per_task"]) for t in learner.study.trials
              if t.system_attrs.get("fixed_params") == defaults]
    assert ran_on == [["a"], ["bb"]]
    choice = learner.recommend(dict(bb.features))
    assert not choice.source.startswith("defaults (candidates untested")
    assert choice.source.endswith("similar tasks: bb)") or choice.source == "similar tasks: bb"
    # Again on "bb", with as many seeds: they are not run a third time.
    learner.meta_train([bb], n_trials=1, **kwargs)
    assert [t.system_attrs.get("fixed_params") for t in learner.study.trials].count(defaults) == 2


def test_production_searches_of_one_setting_pool_across_tasks(tmp_path) -> None:
    # A MetaTuner records each search on its own; the defaults searched on wine and
    # on bc counted as two candidates of one task each: recommend() answered with
    # the luckier one's score as `expected`, and a lucky one-task record of other
    # settings made the defaults "untested".
    learner = MetaLearner(f"sqlite:///{tmp_path}/meta.db")
    defaults = default_recommendation().params
    tabular = {"modality": "tabular", "task_type": "classification"}
    for name, size, score in [("wine", 2.25, 0.33), ("bc", 2.75, 0.23), ("wine", 2.25, 0.35)]:
        learner.record(task=MetaTask(name, {"log_samples": size, **tabular}),
                       strategy="evolution", params=defaults, score=score)
    iris = {"log_samples": 2.5, **tabular}
    choice = learner.recommend(iris)
    assert choice.source == "similar tasks: bc, wine"
    assert choice.expected == pytest.approx((0.23 + 0.34) / 2)
    lucky = dict(defaults, **{"evolution.population_size": 16})
    learner.record(task=MetaTask("wine", {"log_samples": 2.25, **tabular}),
                   strategy="evolution", params=lucky, score=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "candidates untested" warning
        again = learner.recommend(iris)
    assert again.params == defaults and again.source == "similar tasks: bc, wine"


def test_a_resumed_search_recorded_again_is_one_search_not_two(tmp_path) -> None:
    # A MetaTuner search resumed with more trials is recorded under "<id>#<trials>":
    # both records were pooled, averaging the search with its own earlier state.
    learner = MetaLearner(f"sqlite:///{tmp_path}/meta.db")
    defaults = default_recommendation().params
    wine = MetaTask("wine", {"log_samples": 2.25, "modality": "tabular"})
    a, b = "a" * 32, "b" * 32  # MetaTuner's search ids (uuid4().hex)
    for key, score in [(f"{a}#10", 0.50), (f"{a}#25", 0.20), (f"{b}#10", 0.40), (None, 0.30)]:
        learner.record(task=wine, strategy="evolution", params=defaults, score=score, key=key)
    # An earlier state recorded after the later one is still superseded.
    learner.record(task=wine, strategy="evolution", params=defaults, score=0.9, key=f"{b}#4")
    choice = learner.recommend({"log_samples": 2.25, "modality": "tabular"})
    assert choice.expected == pytest.approx((0.20 + 0.40 + 0.30) / 3)


def test_a_users_own_keys_are_never_taken_for_one_search(tmp_path) -> None:
    # record(key=) is public: "exp#1" on wine and "exp#2" on bc kept only bc's, and a
    # key "x#²" (a digit to str.isdigit, not to int) broke every recommend().
    learner = MetaLearner(f"sqlite:///{tmp_path}/meta.db")
    defaults = default_recommendation().params
    for name, key, score in [("wine", "exp#1", 0.2), ("bc", "exp#2", 0.6), ("bc", "x#²", 0.4)]:
        learner.record(task=MetaTask(name, {"log_samples": 2.25, "modality": "tabular"}),
                       strategy="evolution", params=defaults, score=score, key=key)
    (_, per_task, _, _), = learner._results(exclude=())
    assert per_task == pytest.approx({"wine": 0.2, "bc": 0.5})


@pytest.mark.skipif(not ON_LINUX, reason="a process is looked up in /proc")
def test_the_settings_of_a_killed_meta_trial_run_again_once(tmp_path) -> None:
    # The README: a meta-trial left running by a killed meta-train "is failed ... and
    # what it was running runs again". Only the defaults did; a candidate was lost.
    path = tmp_path / "meta.db"
    candidate = dict(default_recommendation().params, **{"evolution.population_size": 5})

    def killed_running(retry_of=None) -> int:
        learner = MetaLearner(f"sqlite:///{path}", seed=0)
        learner.study.enqueue_trial(candidate, user_attrs=(
            {} if retry_of is None else {RETRY_KEY: retry_of}))
        with warnings.catch_warnings():  # Optuna's: heartbeats are meant for `optimize`
            warnings.simplefilter("ignore", UserWarning)
            trial = learner.study.ask()
        learner.suggest(trial, ["evolution"])  # the process had drawn its settings
        _, record = child(alive=False)
        learner.study._storage.set_trial_system_attr(trial._trial_id, PROCESS_KEY, record)
        return trial.number

    number = killed_running()
    learner = MetaLearner(f"sqlite:///{path}", seed=0)
    # Restarted an hour later: Optuna's stale-heartbeat check must not fail it first
    # (it would be failed with no retry).
    learner.study._storage.record_heartbeat(learner.study.trials[number]._trial_id)
    age(path, learner.study.trials[number]._trial_id, 3600)
    with pytest.warns(UserWarning, match=r"they are failed, and their settings run again"):
        learner.meta_train([MetaTask("t", FEATURES)], fake_evaluate, n_trials=1,
                           strategies=["evolution"], include_defaults=False)
    retry = learner.study.trials[-1]
    assert learner.study.trials[number].state == optuna.trial.TrialState.FAIL
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.params == candidate
    assert retry.user_attrs[RETRY_KEY] == number
    # A retry killed in turn is failed, not queued again (it may be what kills them).
    again = killed_running(retry_of=number)
    with pytest.warns(UserWarning, match=rf"meta-trials \[{again}\] were left running"):
        learner.meta_train([MetaTask("t", FEATURES)], fake_evaluate, n_trials=1,
                           strategies=["evolution"], include_defaults=False)
    assert learner.study.trials[-1].params != candidate


@pytest.mark.skipif(not ON_LINUX, reason="a process is looked up in /proc")
def test_a_killed_meta_trial_runs_again_after_the_defaults_and_only_for_its_strategy(
        tmp_path) -> None:
    # Queued trials run in order: a retry queued before the defaults took the one
    # meta-trial of the call, and recommend() then had an untested candidate.
    candidate = dict(default_recommendation().params, **{"evolution.population_size": 5})

    def killed_running(path) -> int:
        learner = MetaLearner(f"sqlite:///{path}", seed=0)
        learner.study.enqueue_trial(candidate)
        with warnings.catch_warnings():  # Optuna's: heartbeats are meant for `optimize`
            warnings.simplefilter("ignore", UserWarning)
            trial = learner.study.ask()
        learner.suggest(trial, ["evolution", "random"])
        _, record = child(alive=False)
        learner.study._storage.set_trial_system_attr(trial._trial_id, PROCESS_KEY, record)
        return trial.number

    for path in (tmp_path / "a.db", tmp_path / "b.db"):
        learner = MetaLearner(f"sqlite:///{path}", seed=0)
        learner.meta_train([MetaTask("t", FEATURES)], fake_evaluate, n_trials=2,
                           strategies=["evolution", "random"], include_defaults=False)
    learner = MetaLearner(f"sqlite:///{tmp_path / 'a.db'}", seed=0)
    number = killed_running(tmp_path / "a.db")
    with pytest.warns(UserWarning, match="left running"):
        learner.meta_train([MetaTask("t", FEATURES)], fake_evaluate, n_trials=1,
                           strategies=["evolution"])
    ran = learner.study.trials[number + 1]
    assert ran.params == default_recommendation().params and ran.state.name == "COMPLETE"
    retry = learner.study.trials[number + 2]
    assert retry.system_attrs["fixed_params"] == candidate
    assert retry.user_attrs[RETRY_KEY] == number
    assert retry.state.name == "WAITING"  # the next meta-training runs it
    # Killed running evolution, meta-trained on random alone: not run as random's.
    learner = MetaLearner(f"sqlite:///{tmp_path / 'b.db'}", seed=0)
    number = killed_running(tmp_path / "b.db")
    with pytest.warns(UserWarning, match=rf"meta-trials \[{number}\] were killed running a "
                                         "strategy this call does not meta-train"):
        learner.meta_train([MetaTask("t", FEATURES)], fake_evaluate, n_trials=1,
                           strategies=["random"], include_defaults=False)
    assert all(t.params.get("strategy") == "random" for t in learner.study.trials[number + 1:])


@pytest.mark.parametrize("content", ["{not json", "{}", '[{"score": 0.2}]'])
def test_a_corrupt_pending_file_is_named_before_the_search(tmp_path, content) -> None:
    # Was a bare JSONDecodeError, or (a dict, entries without a task) taken for a
    # storage that is still down: "the meta storage is still unavailable", forever.
    from metanas.demo import build_mlp
    from metanas.meta import MetaTuner
    from metanas.tuners import SavedStateError

    pending = tmp_path / ".metanas-meta-pending" / "p.json"
    pending.parent.mkdir()
    pending.write_text(content)
    tuner = MetaTuner(build_mlp, objective="val_accuracy", max_trials=2, seed=1,
                      meta_storage=f"sqlite:///{tmp_path}/meta.db", directory=str(tmp_path),
                      project_name="p")
    x, y = np.zeros((8, 64), "float32"), np.arange(8) % 2
    with pytest.raises(SavedStateError, match=rf"search results waiting for the meta storage, "
                                              rf"{pending}, is corrupt"):
        tuner.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    assert tuner.oracle.trials == {} and pending.read_text() == content


def test_a_pending_result_no_storage_takes_does_not_block_the_others(tmp_path) -> None:
    # Refused by MetaTask (a feature None), it was taken for a storage that is down:
    # "still unavailable", and every result behind it stayed pending, for ever.
    import json

    from metanas.demo import build_mlp
    from metanas.meta import MetaTuner

    good = {"task": {"name": "ok", "features": {"log_samples": 2.0}}, "strategy": "evolution",
            "params": default_recommendation().params, "score": 0.3, "key": "k2"}
    bad = dict(good, task={"name": "old", "features": {"log_samples": 2.0, "augmented": None}},
               key="k1")
    pending = tmp_path / ".metanas-meta-pending" / "p.json"
    pending.parent.mkdir()
    pending.write_text(json.dumps([bad, good]))
    tuner = MetaTuner(build_mlp, objective="val_accuracy", max_trials=2, seed=1,
                      meta_storage=f"sqlite:///{tmp_path}/meta.db", directory=str(tmp_path),
                      project_name="p")
    with pytest.warns(UserWarning, match=r"a pending search result is dropped: MetaTask 'old'"):
        tuner._flush_pending()
    assert not pending.exists() or json.loads(pending.read_text()) == []
    recorded = [t.user_attrs.get("per_task") for t in tuner.learner.study.trials]
    assert recorded == [{"ok": 0.3}]


def test_meta_train_into_a_missing_folder_says_so(tmp_path, capsys) -> None:
    # Was: "cannot open the meta storage ...: (sqlite3.OperationalError) unable to open
    # database file", after loading the benchmark's tasks.
    from metanas import cli

    folder = tmp_path / "nodir"
    argv = ["meta-train", "--tasks", "hpobench/credit_g", "--budget", "10", "--meta-trials", "1",
            "--storage", f"sqlite:///{folder}/meta.db", "--no-progress"]
    assert cli.main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [f"metanas meta-train: error: --storage: the folder {str(folder)!r} of the "
                     "meta storage does not exist (create it, or check the path)"]
    assert not folder.exists()
