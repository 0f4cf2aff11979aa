"""Values a trial's model never read: recorded by the tuner, used by the oracles."""

import json

import keras
import keras_tuner
import numpy as np
import pytest

from metanas.tuners import EvolutionOracle, EvolutionSearch, RandomSearchOracle, SearchSpaceCodec
from metanas.tuners.reads import ReadRecord, recording_reads, unread_decisions
from tests.tuners.conformance import MAX, finish, make


def layers_space():
    """keras-tuner's tutorial space, after a three-layer model registered units_2."""
    hp = keras_tuner.HyperParameters()
    hp.Int("num_layers", 1, 3)
    for i in range(3):
        hp.Int(f"units_{i}", 8, 64, step=8)
    hp.Choice("activation", ["relu", "tanh"])
    return hp


def read_like_the_tutorial(hp):
    """The reads of keras-tuner's tutorial build: units_i for i < num_layers only."""
    for i in range(hp.Int("num_layers", 1, 3)):
        hp.Int(f"units_{i}", 8, 64, step=8)
    hp.Choice("activation", ["relu", "tanh"])


def test_the_record_names_what_a_build_read_and_the_values_keep_their_identity():
    hp = layers_space()
    hp.values.update({"num_layers": 1, "units_1": 16, "units_2": 24})
    values = hp.values
    record = ReadRecord()
    with recording_reads(hp, record):
        read_like_the_tutorial(hp)
        hp.Float("dropout", 0.0, 0.5)  # a name the build meets for the first time
        assert hp.get("units_0") == 8 and hp["activation"] == "relu"
    assert hp.values is values and values["dropout"] == 0.0
    assert type(hp.values) is dict
    assert record.names >= {"num_layers", "units_0", "activation", "dropout"}
    assert unread_decisions(hp, record) == ["units_1", "units_2"]
    # Every value read: nothing is unused.
    with recording_reads(hp, record):
        hp.values.get("units_1"), hp.values["units_2"]
    assert unread_decisions(hp, record) == []


def test_the_values_a_build_sees_serialise_as_a_plain_dict_does():
    # Was: yaml.safe_dump refused them (every trial failed), yaml.dump tagged them as
    # a Python object, and tf.nest.map_structure could not rebuild them.
    import tensorflow as tf
    import yaml

    hp = keras_tuner.HyperParameters()
    hp.Int("units", 1, 4, default=2)
    hp.Choice("act", ["relu", "tanh"])
    record = ReadRecord()
    with recording_reads(hp, record):
        assert yaml.safe_load(yaml.safe_dump(hp.values)) == {"units": 2, "act": "relu"}
        assert yaml.dump(hp.values) == yaml.dump({"units": 2, "act": "relu"})
        assert tf.nest.map_structure(lambda v: v, hp.values) == {"units": 2, "act": "relu"}
        assert json.loads(json.dumps(hp.values)) == {"units": 2, "act": "relu"}
    assert record.everything  # dumping them reads every one

    class Later:  # a representer another library adds later still reaches safe_dump
        pass

    yaml.representer.SafeRepresenter.add_representer(
        Later, lambda dumper, data: dumper.represent_str("later"))
    assert yaml.safe_dump(Later()).startswith("later")


def test_values_dump_with_yaml_after_a_dumper_got_a_table_of_its_own():
    # `yaml.add_representer` registers on yaml.Dumper, which then holds its own table:
    # done before metanas registered, the base registration did not reach it.
    import subprocess
    import sys

    script = (
        "import yaml\n"
        "class Mine: pass\n"
        "yaml.add_representer(Mine, lambda d, v: d.represent_str('mine'))\n"
        "yaml.SafeDumper.add_representer(Mine, lambda d, v: d.represent_str('mine'))\n"
        "import importlib\n"
        "reads = importlib.import_module('metanas.tuners.reads')\n"
        "values = reads._RecordingValues({'units': 2})\n"
        "assert yaml.safe_dump(values) == 'units: 2\\n', yaml.safe_dump(values)\n"
        "assert yaml.dump(values) == 'units: 2\\n', yaml.dump(values)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_a_value_of_a_name_the_model_never_registered_is_unread():
    # An initial_hps setting of a branch the model did not build (AutoKeras's ResNet
    # start on a vanilla ImageBlock) was neither read nor listed as unused.
    hp = layers_space()
    hp.values.update({"num_layers": 1, "res_net_block_1/version": "resnet50"})
    record = ReadRecord()
    with recording_reads(hp, record):
        read_like_the_tutorial(hp)
    assert unread_decisions(hp, record) == ["res_net_block_1/version", "units_1", "units_2"]


@pytest.mark.parametrize("bulk", [
    lambda v: dict(v), lambda v: list(v.items()), lambda v: v.copy(), lambda v: list(v),
    lambda v: {**v}, lambda v: json.dumps(v),
])
def test_reading_every_value_at_once_counts_as_reading_them_all(bulk):
    hp = layers_space()
    record = ReadRecord()
    with recording_reads(hp, record):
        hp.get("num_layers")
        bulk(hp.values)
    assert unread_decisions(hp, record) is None
    # Nothing recorded (the model was never built here): the record cannot tell.
    assert unread_decisions(hp, ReadRecord()) is None


def completed(oracle, values, score, unused=None):
    trial = oracle.create_trial("tuner0")
    trial.hyperparameters.values.clear()
    trial.hyperparameters.values.update(values)
    if unused is not None:
        oracle.note_unused(trial.trial_id, unused)
    finish(oracle, trial, score)
    return trial


def test_a_configuration_that_differs_only_in_unread_values_counts_as_tried(tmp_path):
    oracle = make(RandomSearchOracle, tmp_path, space=layers_space())
    one = {"num_layers": 1, "units_0": 8, "units_1": 16, "units_2": 24, "activation": "relu"}
    completed(oracle, one, 0.5, unused=["units_1", "units_2"])
    assert oracle.is_duplicate({**one, "units_2": 64})
    assert oracle.tried_key({**one, "units_1": 64}) == oracle.codec.hash(one)
    assert not oracle.is_duplicate({**one, "units_0": 64})  # a value the model read
    assert not oracle.is_duplicate({**one, "num_layers": 2})
    # A trial whose model read every value it held matches configurations that
    # hold more (names the space gained since) but agree on all of its values.
    two = {"num_layers": 2, "units_0": 8, "units_1": 16, "activation": "tanh"}
    completed(oracle, two, 0.6, unused=[])
    assert oracle.is_duplicate({**two, "units_2": 40})
    assert not oracle.is_duplicate({**two, "units_1": 24, "units_2": 40})
    # Nothing noted: only the same values are a duplicate, as before.
    three = {**two, "units_1": 32, "units_2": 8}
    completed(oracle, three, 0.7)
    assert oracle.unused_names(oracle.end_order[-1]) == frozenset()
    assert not oracle.is_duplicate({**three, "units_2": 16})

    # The notes are in the saved state, and a reload keeps them.
    state = json.loads(json.dumps(oracle.get_state()))
    # (keras-tuner gave the second trial a units_2 as it ended: no model read it.)
    assert state["unused"] == {"00": ["units_1", "units_2"], "01": ["units_2"]}
    again = make(RandomSearchOracle, tmp_path, space=layers_space())
    again.reload()
    assert again.is_duplicate({**one, "units_2": 64})
    assert not again.is_duplicate({**one, "units_0": 64})


def test_note_unused_and_a_bad_saved_note_are_errors_that_name_the_value(tmp_path):
    oracle = make(RandomSearchOracle, tmp_path, space=layers_space())
    with pytest.raises(ValueError, match="trial_id '7' is not a trial"):
        oracle.note_unused("7", [])
    trial = completed(oracle, {"num_layers": 1, "units_0": 8, "activation": "relu"}, 0.1)
    with pytest.raises(ValueError, match="list of hyperparameter names, got 'units_1'"):
        oracle.note_unused(trial.trial_id, "units_1")
    oracle.note_unused(trial.trial_id, ["units_0", "not_held"])  # the latter is ignored
    assert oracle.unused_names(trial.trial_id) == {"units_0"}
    state = oracle.get_state()
    state["unused"] = {"9": ["units_0"]}
    with pytest.raises(ValueError, match="'unused': expected known trial ids"):
        oracle.set_state(state)


def test_a_mutation_always_changes_a_value_the_model_read():
    codec = SearchSpaceCodec(layers_space())
    parent = {"num_layers": 1, "units_0": 8, "units_1": 16, "units_2": 24, "activation": "relu"}
    read = ("num_layers", "units_0", "activation")
    rng = np.random.default_rng(0)
    drifted = 0
    for _ in range(300):
        child = codec.mutate(parent, rng, rate=0.3, min_mutations=1,
                             unused=["units_1", "units_2"])
        assert any(child[k] != parent[k] for k in read)
        # Unread values may drift along (at the rate), never alone.
        drifted += (child["units_1"], child["units_2"]) != (16, 24)
        child = codec.mutate(parent, rng, rate=0.0, min_mutations=1,
                             unused=["units_1", "units_2"])
        assert (child["units_1"], child["units_2"]) == (16, 24) and child != parent
    assert drifted > 0


class TutorialModel(keras_tuner.HyperModel):
    """keras-tuner's tutorial model, built for real; "fit" scores it by a formula
    of the values the build read (no training, so the search is deterministic)."""

    def build(self, hp):
        model = keras.Sequential([keras.Input((2,))])
        units = []
        for i in range(hp.Int("num_layers", 1, 3)):
            units.append(hp.Int(f"units_{i}", 8, 64, step=8))
            model.add(keras.layers.Dense(units[-1]))
        model.units = units
        return model

    def fit(self, hp, model, *args, **kwargs):
        return {"score": float(sum(u * (i + 1) for i, u in enumerate(model.units)))}


def functional_key(values):
    return tuple(values[f"units_{i}"] for i in range(values["num_layers"]))


def test_evolution_never_trains_the_same_model_twice_on_the_tutorial_space(tmp_path):
    # keras-tuner registers units_i unconditionally when a model first has
    # i + 1 layers: one-layer models then carry values they never read, and a
    # mutation of those alone would build the same model again.
    tuner = EvolutionSearch(
        TutorialModel(), objective=keras_tuner.Objective("score", "max"), max_trials=20,
        seed=3, population_size=4, racing_fraction=0.0, directory=tmp_path,
        tracking=False, cost_measures=False)
    tuner.search(verbose=0)
    oracle = tuner.oracle
    trials = [oracle.trials[t] for t in oracle.end_order]
    assert len(trials) == 20 and all(t.status == "COMPLETED" for t in trials)
    keys = [functional_key(t.hyperparameters.values) for t in trials]
    assert len(set(keys)) == len(keys), "the same model was trained twice"
    # What each model left unread is noted, and saved.
    saved = json.loads((tmp_path / "untitled_project" / "oracle.json").read_text())["unused"]
    for trial in trials:
        values = trial.hyperparameters.values
        assert saved[trial.trial_id] == sorted(
            f"units_{i}" for i in range(values["num_layers"], 3) if f"units_{i}" in values)
    assert any(saved.values()), "no trial left a value unread"


def test_a_run_trial_that_reads_all_values_at_once_leaves_no_note(tmp_path):
    # As metanas's benchmark tables do: the oracles work as they did before.
    class Formula(EvolutionSearch):
        def run_trial(self, trial, *args, **kwargs):
            return {"score": float(dict(trial.hyperparameters.values)["units_0"])}

    tuner = Formula(read_like_the_tutorial, objective=keras_tuner.Objective("score", "max"),
                    max_trials=5, seed=3, directory=tmp_path, tracking=False,
                    cost_measures=False)
    tuner.search(verbose=0)
    assert tuner.oracle._unused == {} and len(tuner.oracle.end_order) == 5


def test_values_read_in_a_run_trial_override_count_as_read(tmp_path):
    # keras-tuner's recipe for tuning fit arguments: read before keras-tuner's
    # run_trial, outside its build and fit.
    class BatchSizeTuner(EvolutionSearch):
        def run_trial(self, trial, *args, **kwargs):
            kwargs["batch_size"] = trial.hyperparameters.Int("batch_size", 16, 128, step=16)
            return super().run_trial(trial, *args, **kwargs)

    class Scored(TutorialModel):
        def fit(self, hp, model, *args, batch_size=None, **kwargs):
            return {"score": super().fit(hp, model)["score"] + batch_size}

    tuner = BatchSizeTuner(Scored(), objective=keras_tuner.Objective("score", "max"),
                           max_trials=6, seed=3, population_size=3, directory=tmp_path,
                           tracking=False, cost_measures=False)
    tuner.search(verbose=0)
    notes = tuner.oracle.get_state()["unused"]
    assert len(notes) == 6 and not any("batch_size" in names for names in notes.values())


def test_evolution_oracle_mutates_what_the_parent_read(tmp_path):
    oracle = make(EvolutionOracle, tmp_path, space=layers_space(), population_size=2,
                  tournament_size=1, crossover_rate=0.0, mutation_rate=0.0, objective=MAX)
    base = {"num_layers": 1, "units_0": 8, "units_1": 16, "units_2": 24, "activation": "relu"}
    completed(oracle, base, 1.0, unused=["units_1", "units_2"])
    completed(oracle, {**base, "units_0": 16}, 0.5, unused=["units_1", "units_2"])
    for _ in range(10):
        child = oracle.create_trial("tuner0")
        values = child.hyperparameters.values
        # One mutation, never of units_1 or units_2 (which changes no model).
        assert {k for k in base if values.get(k) != base[k]} & {"num_layers", "units_0",
                                                                 "activation"}
        finish(oracle, child, 0.0)


def test_mlflow_tags_each_trial_with_the_values_its_model_never_read(tmp_path):
    from metanas.tracking import MlflowTracker
    from tests.tracking.helpers import runs_of

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tuner = EvolutionSearch(
        TutorialModel(), objective=keras_tuner.Objective("score", "max"), max_trials=8,
        seed=3, population_size=4, directory=tmp_path, project_name="tutorial",
        tracking=MlflowTracker(tracking_uri=uri), cost_measures=False)
    tuner.search(verbose=0)
    _, children = runs_of(uri, "tutorial")
    tags = {r.data.tags["metanas.trial_id"]: r.data.tags.get("metanas.unused_hyperparameters")
            for r in children}
    expected = {t: ",".join(tuner.unused_hyperparameters(t)) or None
                for t in tuner.oracle.trials}
    assert tags == expected and any(expected.values())


def test_the_chief_notes_what_a_worker_read_of_names_new_to_the_space(tmp_path, monkeypatch):
    # The worker's build registers (and reads) units_1 and units_2, which the
    # chief's copy of the trial does not hold until keras-tuner's end_trial.
    from keras_tuner.src.distribute import utils as dist_utils
    from keras_tuner.src.engine import trial as trial_module

    from metanas.tuners import distributed

    hp = keras_tuner.HyperParameters()
    hp.Int("num_layers", 1, 3)
    hp.Int("units_0", 8, 64, step=8)
    oracle = make(RandomSearchOracle, tmp_path, space=hp)
    trial = oracle.create_trial("tuner0")
    trial.hyperparameters.values.update({"num_layers": 3, "units_0": 8})
    worker = trial_module.Trial.from_proto(trial.to_proto())  # over gRPC
    record = ReadRecord()
    with recording_reads(worker.hyperparameters, record):
        read_like_the_tutorial(worker.hyperparameters)
    distributed.keep_unused(oracle._get_trial_dir(trial.trial_id),
                            unread_decisions(worker.hyperparameters, record))
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    worker.status = "COMPLETED"
    monkeypatch.setattr(dist_utils, "is_chief_oracle", lambda: True)
    oracle.end_trial(trial_module.Trial.from_proto(worker.to_proto()))
    assert oracle.get_state()["unused"] == {trial.trial_id: []}
    values = oracle.trial_values(trial.trial_id)
    assert not oracle.is_duplicate({**values, "units_2": 64 if values["units_2"] != 64 else 8})
    assert not list(tmp_path.rglob(distributed.UNUSED_FILE))


def test_a_trial_made_invalid_by_a_nan_score_loses_its_note(tmp_path):
    oracle = make(RandomSearchOracle, tmp_path, space=layers_space())
    one = {"num_layers": 1, "units_0": 8, "units_1": 16, "units_2": 24, "activation": "relu"}
    trial = completed(oracle, one, float("nan"), unused=["units_1", "units_2"])
    assert oracle.trials[trial.trial_id].status != "COMPLETED"  # INVALID, then FAILED
    assert oracle.get_state()["unused"] == {}
    assert not oracle.is_duplicate({**one, "units_2": 64})


def test_unread_values_filling_a_cut_listing_do_not_end_the_search_early(tmp_path, monkeypatch):
    # Was (a review's finding): once the prior's draws kept colliding, the space
    # was listed up to a limit, a listing that values no model reads filled with
    # configurations read alike to tried ones: "used up", with models untried.
    # (Evolution falls back on the same `random_unique`.)
    from metanas.tuners import base

    monkeypatch.setattr(base, "_ENUMERATE_LIMIT", 300)
    space = keras_tuner.HyperParameters()
    space.Choice("a", list(range(30)))
    space.Int("junk", 0, 10_000)  # in the space, never read
    for seed in range(6):
        oracle = make(RandomSearchOracle, tmp_path, name=f"s{seed}", space=space, max_trials=60,
                      seed=seed)
        while (trial := oracle.create_trial("w")).status == "RUNNING":
            oracle.note_unused(trial.trial_id, ["junk"])
            finish(oracle, trial, float(trial.hyperparameters.values["a"]))
        tried = {t.hyperparameters.values["a"] for t in oracle.trials.values()}
        assert tried == set(range(30)), (seed, sorted(set(range(30)) - tried))
