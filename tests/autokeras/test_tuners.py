"""Real, tiny AutoKeras searches driven by the metanas tuners.

Each search trains 1 epoch per trial on a few hundred rows. The oracles are
wrapped to record what they proposed, so the tests can tell that the trials
AutoKeras trained are the metanas proposals (and not its greedy tuner's).
"""

import subprocess
import sys

import autokeras as ak
import keras
import keras_tuner
import numpy as np
import pytest
from autokeras import auto_model
from autokeras.tuners import task_specific
from sklearn.datasets import load_breast_cancer, load_digits, load_wine

import metanas.autokeras as mak
from metanas.autokeras import EvolutionTuner, RandomTuner
from metanas.autokeras.tuners import AutoKerasStrategyTuner, head_task_type, task_initial_hps
from metanas.tuners import EvolutionOracle, RandomSearchOracle, RLControllerOracle
from metanas.tuners.base import is_oversized


# ------------------------------------------------------------------ helpers
def recording(tuner_class):
    """``tuner_class`` whose oracle also keeps each trial's proposed values."""
    base = tuner_class.resolve_oracle_class()

    class Recording(base):
        def populate_space(self, trial_id):
            answer = super().populate_space(trial_id)
            if not hasattr(self, "proposed"):
                self.proposed = {}
            self.proposed[trial_id] = dict(answer["values"] or {})
            return answer

    return type(f"Recording{tuner_class.__name__}", (tuner_class,), {"oracle_class": Recording})


def assert_trials_are_proposals(oracle, trial_ids):
    assert trial_ids, "no trial ran"
    for trial_id in trial_ids:
        proposed = oracle.proposed[trial_id]
        trained = oracle.trials[trial_id].hyperparameters.values
        assert proposed, trial_id
        assert {name: trained[name] for name in proposed} == proposed


def exported_predictions(model, x):
    """Predicts with ``export_model()``'s Keras model (after AutoKeras's preprocessing)."""
    dataset = model._adapt(x, model.inputs)
    dataset = model.tuner.get_best_pipeline().transform_x(dataset)
    return model.export_model().predict(dataset, verbose=0)


def early_stop():
    # With validation data and an EarlyStopping callback AutoKeras keeps the
    # best trial's model instead of training it once more: faster tests.
    return [keras.callbacks.EarlyStopping(patience=1)]


def digits(n=240):
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:n]
    return (x[order] / 16.0).astype("float32").reshape(-1, 8, 8, 1), y[order]


def small_image_space():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("image_block_1/block_type", "vanilla")
    hp.Fixed("image_block_1/augment", False)
    hp.Fixed("image_block_1/conv_block_1/num_blocks", 1)
    hp.Choice("image_block_1/conv_block_1/filters_0_0", [8, 16])
    hp.Choice("image_block_1/conv_block_1/filters_0_1", [8, 16])
    return hp


def text_data(n=160):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "great", "awful", "fine", "poor", "nice", "sad"]
    y = rng.integers(0, 2, n)
    x = np.array([" ".join(rng.choice(words[int(label)::2], 6)) for label in y])
    return x, y


def small_text_space():
    hp = keras_tuner.HyperParameters()
    hp.Choice("text_block_1/max_tokens", [100, 500])
    hp.Choice("text_block_1/embedding_1/embedding_dim", [8, 16])
    hp.Fixed("text_block_1/conv_block_1/num_blocks", 1)
    hp.Choice("text_block_1/conv_block_1/filters_0_0", [8, 16])
    hp.Choice("text_block_1/conv_block_1/filters_0_1", [8, 16])
    return hp


def tabular(loader, n=None):
    x, y = loader(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:n]
    return x[order].astype("float32"), y[order]


# -------------------------------------------------------------- registration
def test_register_adds_names_once_and_tasks_accept_them(tmp_path):
    registered = mak.register()
    assert set(registered) == {"evolution", "rl", "metanas-random", "meta"}
    assert mak.register() == registered  # idempotent
    for name, cls in registered.items():
        assert auto_model.TUNER_CLASSES[name] is cls
    assert auto_model.TUNER_CLASSES["greedy"] is not None  # AutoKeras's own kept
    with pytest.raises(ValueError, match=r"tuner must be one of \[.*'evolution', .*'greedy', "
                                         r".*'rl'\] or a tuner class, got 'evolutoin'"):
        ak.ImageClassifier(tuner="evolutoin", directory=tmp_path)
    clf = ak.ImageClassifier(
        tuner="evolution", max_trials=3, seed=2, directory=tmp_path, population_size=4
    )
    assert isinstance(clf.tuner, EvolutionTuner)
    assert isinstance(clf.tuner.oracle, EvolutionOracle)
    assert clf.tuner.oracle.population_size == 4 and clf.tuner.oracle.seed == 2
    # The image classifier's task-specific first trials, as AutoKeras's own.
    assert clf.tuner.oracle.initial_hps == task_specific.IMAGE_CLASSIFIER


def test_register_refuses_a_name_taken_by_another_tuner():
    mak.register()
    auto_model.TUNER_CLASSES["evolution"] = ak.tuners.Greedy
    try:
        with pytest.raises(ValueError, match="'evolution' is already taken"):
            mak.register()
    finally:
        auto_model.TUNER_CLASSES["evolution"] = EvolutionTuner


def test_importing_tuners_does_not_import_autokeras():
    code = (
        "import sys, metanas.tuners, metanas.autokeras; "
        "assert 'autokeras' not in sys.modules, 'autokeras imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_register_without_autokeras_says_how_to_install():
    code = (
        "import sys; sys.modules['autokeras'] = None\n"
        "import metanas.autokeras as mak\n"
        "try:\n    mak.register()\nexcept ImportError as e:\n    print('ERROR', e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR metanas.autokeras needs AutoKeras" in result.stdout
    assert "autokeras==3.0.0" in result.stdout


def test_task_initial_hps_follow_the_task(tmp_path):
    def initial(task, **kwargs):
        return task_initial_hps(task(directory=tmp_path, overwrite=True, **kwargs).tuner.hypermodel)

    assert initial(ak.TextClassifier) == task_specific.TEXT_CLASSIFIER
    assert initial(ak.StructuredDataClassifier) == task_specific.STRUCTURED_DATA_CLASSIFIER
    assert initial(ak.StructuredDataRegressor) == task_specific.STRUCTURED_DATA_REGRESSOR
    assert initial(ak.ImageRegressor) == []
    # A custom graph on an image input has no image block: none of its settings.
    from metanas.spaces import CellBlock

    node = ak.ImageInput()
    custom = ak.AutoModel(node, ak.ClassificationHead()(CellBlock(num_nodes=2)(node)),
                          directory=tmp_path, overwrite=True)
    starts = task_initial_hps(custom.tuner.hypermodel)
    assert starts and all("image_block" not in k for values in starts for k in values)
    assert all(k.startswith("classification_head_1/") or "/" not in k
               for values in starts for k in values)


def test_no_starting_point_for_another_block_type_than_the_one_given(tmp_path):
    # ImageBlock(block_type="vanilla"): AutoKeras's ResNet and EfficientNet starting
    # points ran as vanilla networks, recorded as block_type=resnet, resnet50, ...
    table = task_specific.IMAGE_CLASSIFIER
    vanilla = [v for v in table if v["image_block_1/block_type"] == "vanilla"]
    assert 0 < len(vanilla) < len(table)

    def of_graph(tuner, starts, drop=()):
        # (Blocks are named uniquely in a process: the head may be another than
        # classification_head_1 here, and its settings are then left out.)
        names = {block.name for block in tuner.hypermodel.blocks}
        return [{k: v for k, v in values.items() if k not in drop
                 and ("/" not in k or k.split("/")[0] in names)} for values in starts]

    node = ak.ImageInput()
    given = ak.AutoModel(node, ak.ClassificationHead()(ak.ImageBlock(block_type="vanilla")(node)),
                         directory=tmp_path, overwrite=True).tuner
    # The block type it was given is no setting it registers: left out too.
    assert task_initial_hps(given.hypermodel) == of_graph(
        given, vanilla, drop={"image_block_1/block_type"})
    # The same through a Fixed value, as the README restricts an ImageClassifier.
    hp = keras_tuner.HyperParameters()
    hp.Fixed("image_block_1/block_type", "vanilla")
    clf = ak.ImageClassifier(directory=tmp_path, overwrite=True, project_name="fixed").tuner
    assert task_initial_hps(clf.hypermodel, hp) == of_graph(clf, vanilla)
    assert task_initial_hps(clf.hypermodel) == of_graph(clf, table)
    # And a Choice that leaves some block types out.
    hp = keras_tuner.HyperParameters()
    hp.Choice("image_block_1/block_type", ["vanilla", "xception"])
    assert task_initial_hps(clf.hypermodel, hp) == of_graph(clf, vanilla)


def test_the_meta_tuner_takes_the_task_type_from_the_head_and_names_unnamed_tasks(tmp_path):
    storage = f"sqlite:///{tmp_path}/meta.db"

    def tuner(task, **kwargs):
        return task(tuner=mak.MetaTuner, directory=tmp_path, overwrite=True, meta_storage=storage,
                    **kwargs).tuner

    assert head_task_type(tuner(ak.StructuredDataClassifier).hypermodel) == "classification"
    regressor = tuner(ak.StructuredDataRegressor)
    assert regressor.task_type == "regression"
    assert regressor.task_name is None  # AutoKeras's default name: named by its data later
    x = np.arange(200, dtype=float).reshape(100, 2)
    features = regressor.features((), {"x": x, "y": np.arange(100) % 7})  # integer targets
    assert features["task_type"] == "regression"
    regressor._name_task(features)
    assert regressor.task_name.startswith("structured_data_regressor-")
    assert tuner(ak.ImageClassifier, project_name="mnist").task_name == "mnist"


# ------------------------------------------------------------------ searches
def test_image_classifier_evolution_fit_predict_export_and_resume(tmp_path):
    x, y = digits()
    tuner = recording(EvolutionTuner)
    settings = dict(
        tuner=tuner, seed=3, directory=tmp_path, project_name="digits",
        hyperparameters=small_image_space(), population_size=2, tournament_size=2,
    )
    clf = ak.ImageClassifier(max_trials=3, overwrite=True, **settings)
    clf.fit(x[:200], y[:200], validation_data=(x[200:], y[200:]), epochs=1,
            callbacks=early_stop(), verbose=0)
    oracle = clf.tuner.oracle
    assert isinstance(oracle, EvolutionOracle)
    assert oracle.end_order == ["0", "1", "2"]
    assert_trials_are_proposals(oracle, oracle.end_order)
    # AutoKeras's known-good first trial, with the filters the space allows.
    first = oracle.trials["0"].hyperparameters.values
    expected = {k: v for k, v in task_specific.IMAGE_CLASSIFIER[0].items()
                if "filters" not in k}
    assert {k: first[k] for k in expected} == expected
    assert all(t.status == "COMPLETED" for t in oracle.trials.values())
    # AutoKeras's ResNet/EfficientNet first trials were repaired to the Fixed
    # block type (its greedy tuner would run them as they are).
    assert {t.hyperparameters.values["image_block_1/block_type"]
            for t in oracle.trials.values()} == {"vanilla"}

    assert clf.predict(x[:7], verbose=0).shape == (7, 1)
    loss, accuracy = clf.evaluate(x[200:], y[200:], verbose=0)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
    probabilities = exported_predictions(clf, x[:7])
    assert probabilities.shape == (7, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)

    # Fit again with a larger budget and overwrite=False: the search goes on.
    before = {t: oracle.trials[t].hyperparameters.values for t in oracle.end_order}
    resumed = ak.ImageClassifier(max_trials=4, overwrite=False, **settings)
    resumed.fit(x[:200], y[:200], validation_data=(x[200:], y[200:]), epochs=1,
                callbacks=early_stop(), verbose=0)
    oracle = resumed.tuner.oracle
    assert oracle.end_order == ["0", "1", "2", "3"]
    assert {t: oracle.trials[t].hyperparameters.values for t in before} == before
    assert_trials_are_proposals(oracle, ["3"])
    assert oracle.trials["3"].hyperparameters.values not in before.values()
    # Same budget again: nothing left to do, nothing retrained.
    again = ak.ImageClassifier(max_trials=4, overwrite=False, **settings)
    again.fit(x[:200], y[:200], validation_data=(x[200:], y[200:]), epochs=1, verbose=0)
    assert len(again.tuner.oracle.trials) == 4


def test_image_regressor_random(tmp_path):
    x, y = digits(160)
    reg = ak.ImageRegressor(
        tuner=recording(RandomTuner), max_trials=2, seed=4, directory=tmp_path,
        overwrite=True, hyperparameters=small_image_space(),
    )
    reg.fit(x[:120], y[:120].astype("float32"), validation_data=(x[120:], y[120:]),
            epochs=1, callbacks=early_stop(), verbose=0)
    oracle = reg.tuner.oracle
    assert isinstance(oracle, RandomSearchOracle) and oracle.initial_hps == []
    assert len(oracle.end_order) == 2
    assert_trials_are_proposals(oracle, oracle.end_order)
    assert reg.predict(x[:5], verbose=0).shape == (5, 1)
    assert exported_predictions(reg, x[:5]).shape == (5, 1)


# (The text regressor: tests/test_examples.py runs autokeras_text.py --task regressor.)
@pytest.mark.parametrize("task", ["classifier"])
def test_text_tasks(tmp_path, task):
    x, y = text_data()
    cls = ak.TextClassifier if task == "classifier" else ak.TextRegressor
    model = cls(
        tuner=recording(EvolutionTuner), max_trials=2, seed=5, directory=tmp_path,
        overwrite=True, hyperparameters=small_text_space(), population_size=2,
    )
    y = y if task == "classifier" else y.astype("float32")
    model.fit(x[:120], y[:120], validation_data=(x[120:], y[120:]), epochs=1,
              callbacks=early_stop(), verbose=0)
    oracle = model.tuner.oracle
    assert len(oracle.end_order) == 2
    assert_trials_are_proposals(oracle, oracle.end_order)
    if task == "classifier":
        # The text classifier's first trial is AutoKeras's, repaired to the space.
        first = oracle.trials["0"].hyperparameters.values
        assert first["text_block_1/max_tokens"] == 500
        assert first["text_block_1/conv_block_1/kernel_size"] == 3
    assert model.predict(x[:6], verbose=0).shape == (6, 1)
    assert np.isfinite(model.evaluate(x[120:], y[120:], verbose=0)[0])
    assert exported_predictions(model, x[:6]).shape == (6, 1)


@pytest.mark.parametrize(
    "task,name,loader,outputs",
    [("classifier", "rl", load_wine, 3), ("regressor", "evolution", None, 1)],
)
def test_structured_data_tasks_by_registered_name(tmp_path, task, name, loader, outputs):
    mak.register()
    if task == "classifier":
        x, y = tabular(load_wine)
        # One random point after AutoKeras's first trial, then the policy.
        model = ak.StructuredDataClassifier(
            tuner=name, max_trials=3, seed=6, directory=tmp_path, overwrite=True,
            num_initial_points=1, units=16)
    else:
        x, _ = tabular(load_breast_cancer, 200)
        y = (x[:, 0] * 0.1 + x[:, 1] * 0.05).astype("float32")
        model = ak.StructuredDataRegressor(
            tuner=name, max_trials=3, seed=6, directory=tmp_path, overwrite=True,
            population_size=2)
    model.fit(x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=1,
              callbacks=early_stop(), verbose=0)
    oracle = model.tuner.oracle
    assert type(model.tuner) is mak.register()[name]
    table = (task_specific.STRUCTURED_DATA_CLASSIFIER if task == "classifier"
             else task_specific.STRUCTURED_DATA_REGRESSOR)
    first = oracle.trials["0"].hyperparameters.values
    assert {k: first[k] for k in table[0]} == table[0]
    assert len(oracle.end_order) == 3
    # The metanas oracles never repeat a configuration.
    assert len({oracle.codec.hash(t.hyperparameters.values) for t in oracle.trials.values()}) == 3
    # What each AutoKeras model read was recorded: a dense block's units_i
    # beyond its num_layers went unread.
    unused = oracle.get_state()["unused"]
    assert sorted(unused) == sorted(oracle.end_order)
    for trial_id, names in unused.items():
        values = oracle.trials[trial_id].hyperparameters.values
        layers = {k.rsplit("/", 1)[0]: v for k, v in values.items() if k.endswith("/num_layers")}
        assert names == sorted(
            k for k in values if k.rsplit("/", 1)[0] in layers and "/units_" in k
            and int(k.rsplit("_", 1)[1]) >= layers[k.rsplit("/", 1)[0]])
    if name == "rl":
        # The controller learnt from the AutoKeras trials (REINFORCE updates).
        assert isinstance(oracle, RLControllerOracle)
        assert oracle.strategy_diagnostics()["policy/updates"] >= 1
    assert model.predict(x[:4], verbose=0).shape == (4, 1)
    assert exported_predictions(model, x[:4]).shape == (4, outputs)


def test_multi_input_multi_output_automodel(tmp_path):
    images, labels = digits(200)
    rng = np.random.default_rng(1)
    table = rng.normal(size=(200, 5)).astype("float32")
    target = (table[:, 0] + labels / 10.0).astype("float32")
    image_input, table_input = ak.ImageInput(), ak.StructuredDataInput()
    merged = ak.Merge()([
        ak.ConvBlock(num_blocks=1, num_layers=1)(ak.Normalization()(image_input)),
        ak.DenseBlock(num_layers=1)(table_input),
    ])
    model = ak.AutoModel(
        inputs=[image_input, table_input],
        outputs=[ak.ClassificationHead(name="digit")(merged),
                 ak.RegressionHead(name="value")(merged)],
        tuner=recording(EvolutionTuner), max_trials=2, seed=7,
        directory=tmp_path, overwrite=True, population_size=2,
    )
    assert model.tuner.oracle.initial_hps == []
    model.fit([images[:160], table[:160]], [labels[:160], target[:160]],
              validation_data=([images[160:], table[160:]], [labels[160:], target[160:]]),
              epochs=1, callbacks=early_stop(), verbose=0)
    oracle = model.tuner.oracle
    assert len(oracle.end_order) == 2
    assert_trials_are_proposals(oracle, oracle.end_order)
    digit, value = model.predict([images[:3], table[:3]], verbose=0)
    assert digit.shape == (3, 1) and value.shape == (3, 1)
    outputs = exported_predictions(model, [images[:3], table[:3]])
    assert [o.shape for o in outputs] == [(3, 10), (3, 1)]
    assert np.isfinite(model.evaluate([images[160:], table[160:]],
                                      [labels[160:], target[160:]], verbose=0)[0])


# ------------------------------------------------------------ max_model_size
def dense_config(units, layers):
    values = {
        "structured_data_block_1/normalize": False,
        "structured_data_block_1/dense_block_1/num_layers": layers,
        "structured_data_block_1/dense_block_1/use_batchnorm": False,
        "structured_data_block_1/dense_block_1/dropout": 0.0,
        "classification_head_1/dropout": 0.0,
        "optimizer": "adam",
        "learning_rate": 0.001,
    }
    values.update({f"structured_data_block_1/dense_block_1/units_{i}": units
                   for i in range(layers)})
    return values


def test_oversized_models_fail_their_trials_without_ending_the_search(tmp_path):
    x, y = tabular(load_wine)
    big = [dense_config(512, 2), dense_config(1024, 2), dense_config(512, 3)]
    small = dense_config(16, 1)
    clf = ak.StructuredDataClassifier(
        tuner=RandomTuner, max_trials=4, seed=8, directory=tmp_path, overwrite=True,
        max_model_size=2000, max_consecutive_failed_trials=2,
        initial_hps=big + [small],
    )
    clf.fit(x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=1,
            callbacks=early_stop(), verbose=0)
    oracle = clf.tuner.oracle
    statuses = [oracle.trials[t].status for t in oracle.end_order]
    # Three oversized trials in a row, over a limit of two failures: not a stop.
    assert statuses == ["FAILED", "FAILED", "FAILED", "COMPLETED"]
    assert all(is_oversized(oracle.trials[t]) for t in oracle.end_order[:3])
    for trial in oracle.trials.values():
        if trial.status == "COMPLETED":
            assert trial.metrics.get_last_value("cost/params") <= 2000
    assert clf.export_model().count_params() <= 2000


def test_a_search_where_every_model_is_oversized_says_so(tmp_path):
    x, y = tabular(load_wine)
    clf = ak.StructuredDataClassifier(
        tuner=RandomTuner, max_trials=2, seed=9, directory=tmp_path, overwrite=True,
        max_model_size=10,
    )
    with pytest.raises(RuntimeError, match=r"no trial of 2 completed \(2 exceeded max_model_size=10\)"):
        clf.fit(x, y, validation_split=0.2, epochs=1, verbose=0)


def test_constructor_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="population_size"):
        ak.ImageClassifier(tuner=EvolutionTuner, directory=tmp_path, population_size=0)


# ---------------------------------------------------------------- MetaTuner
def test_meta_tuner_picks_a_strategy_searches_and_records_it(tmp_path):
    from metanas.meta import MetaLearner

    x, y = tabular(load_wine)
    storage = f"sqlite:///{tmp_path}/meta.db"
    clf = ak.StructuredDataClassifier(
        tuner=mak.MetaTuner, max_trials=3, seed=10, directory=tmp_path, overwrite=True,
        project_name="wine", meta_storage=storage,
    )
    with pytest.warns(UserWarning, match="no meta-trial"):
        clf.fit(x[:140], y[:140], validation_data=(x[140:], y[140:]), epochs=1,
                callbacks=early_stop(), verbose=0)
    tuner = clf.tuner
    assert tuner.recommendation.source == "defaults"
    assert isinstance(tuner.oracle, EvolutionOracle)
    # AutoKeras's first trial for the task went to the recommended oracle too.
    first = tuner.oracle.trials["0"].hyperparameters.values
    table = task_specific.STRUCTURED_DATA_CLASSIFIER[0]
    assert {k: first[k] for k in table} == table
    assert len(tuner.oracle.trials) == 3
    # Meta-features came from the AutoKeras dataset (not only the space).
    assert tuner._features["log_samples"] == pytest.approx(np.log10(140))
    assert tuner._features["modality"] == "tabular"
    study = MetaLearner(storage).study
    assert [set(t.user_attrs["per_task"]) for t in study.trials] == [{"wine"}]
    assert clf.predict(x[:2], verbose=0).shape == (2, 1)


def test_a_tuner_whose_strategy_is_missing_is_unavailable_and_says_so(tmp_path):
    class Missing(AutoKerasStrategyTuner):
        oracle_path = "metanas.tuners.no_such_strategy:NoSuchOracle"

    assert not Missing.is_available() and EvolutionTuner.is_available()
    with pytest.raises(ImportError, match="Missing needs metanas.tuners.no_such_strategy.NoSuchOracle"):
        ak.ImageClassifier(tuner=Missing, directory=tmp_path)
