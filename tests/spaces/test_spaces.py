"""The architecture search spaces: models built from sampled configurations."""

import keras
import keras_tuner
import numpy as np
import pytest
from sklearn.datasets import load_digits, load_wine

from metanas.spaces import OPERATIONS, CellSpace, DenseSpace, cell_edges
from metanas.tuners import EvolutionSearch
from metanas.tuners.codec import SearchSpaceCodec


def sampled_model(hypermodel, seed, grow=None):
    """A configuration drawn from the whole space, and the model built from it."""
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    if grow:  # activate every conditional decision once, so it is in the space
        hp.values.update(grow)
        hypermodel.build(hp)
    values = SearchSpaceCodec(hp).sample(np.random.default_rng(seed))
    chosen = keras_tuner.HyperParameters()
    chosen.merge(hp.space)
    chosen.values = dict(values)
    model = hypermodel.build(chosen)
    return values, model


def layer_names(model, kind):
    return [layer.name for layer in model.layers if type(layer) is kind]


def test_cell_space_names_every_edge_and_decision():
    hp = keras_tuner.HyperParameters()
    CellSpace(input_shape=(8, 8, 1), num_classes=10, num_nodes=4).build(hp)
    names = [h.name for h in hp.space]
    assert names == [f"edge_{i}_{j}" for i, j in cell_edges(4)] + [
        "cells_per_stage", "filters", "learning_rate"]
    assert len(cell_edges(4)) == 6  # NAS-Bench-201's cell
    assert list(hp.space[0].values) == list(OPERATIONS)


@pytest.mark.parametrize("seed", range(4))
def test_cell_models_follow_their_sampled_configuration(seed):
    space = CellSpace(input_shape=(8, 8, 1), num_classes=10, num_stages=2)
    values, model = sampled_model(space, seed)
    cells = values["cells_per_stage"]
    edges = {(i, j): values[f"edge_{i}_{j}"] for i, j in cell_edges(4)}
    # Keras keeps only the layers on a path to the output: an edge counts when
    # its target node feeds the cell's output.
    live = {3}
    for j in (2, 1):
        if any(edges[(j, k)] != "none" and k in live for k in range(j + 1, 4)):
            live.add(j)
    kept = {edge: op for edge, op in edges.items() if op != "none" and edge[1] in live}
    convs = [n for n in layer_names(model, keras.layers.Conv2D) if "_e" in n]
    assert len(convs) == sum(op.startswith("conv") for op in kept.values()) * cells * 2
    pools = layer_names(model, keras.layers.AveragePooling2D)
    for (i, j), op in edges.items():
        label = f"cell_s0c0_e{i}{j}"
        assert (label in convs) == ((i, j) in kept and op.startswith("conv"))
        assert (label in pools) == ((i, j) in kept and op == "avgpool3x3")
        if label in convs:
            size = 1 if op == "conv1x1" else 3
            assert model.get_layer(label).kernel_size == (size, size)
    assert model.get_layer("cell_stem").filters == values["filters"]
    # One reduction between the two stages: 8x8 -> 4x4, filters doubled.
    assert model.get_layer("cell_out").output.shape[1:] == (4, 4, 2 * values["filters"])
    x = np.random.default_rng(seed).random((16, 8, 8, 1)).astype("float32")
    assert model.predict(x, verbose=0).shape == (16, 10)


def test_a_cell_whose_node_has_only_none_edges_outputs_zeros():
    space = CellSpace(input_shape=(8, 8, 1), num_classes=3, num_stages=1)
    hp = keras_tuner.HyperParameters()
    space.build(hp)
    hp.values.update({f"edge_{i}_{j}": "none" for i, j in cell_edges(4)})
    hp.values["cells_per_stage"] = 1
    model = space.build(hp)
    features = keras.Model(model.input, model.get_layer("cell_s0c0_n3_zeros").output)
    assert not np.any(features.predict(np.ones((2, 8, 8, 1), "float32"), verbose=0))


def test_dense_space_decisions_are_conditional_on_depth():
    space = DenseSpace(input_dim=13, num_outputs=3, max_depth=3)
    hp = keras_tuner.HyperParameters()
    space.build(hp)
    hp.values["depth"] = 3
    space.build(hp)
    per_layer = [f"{d}_{i}" for i in range(3) for d in ("units", "activation", "dropout", "skip")]
    assert sorted(h.name for h in hp.space) == sorted(["depth", "learning_rate"] + per_layer)
    assert all(h.conditions for h in hp.space if h.name not in ("depth", "learning_rate"))


@pytest.mark.parametrize("seed", range(4))
def test_dense_models_follow_their_sampled_configuration(seed):
    space = DenseSpace(input_dim=13, num_outputs=3, max_depth=3)
    values, model = sampled_model(space, seed, grow={"depth": 3})
    depth = values["depth"]
    assert set(values) == {"depth", "learning_rate"} | {
        f"{d}_{i}" for i in range(depth) for d in ("units", "activation", "dropout", "skip")}
    for i in range(depth):
        layer = model.get_layer(f"dense_{i}")
        assert layer.units == values[f"units_{i}"]
        assert layer.activation.__name__ == values[f"activation_{i}"]
        assert (f"dense_{i}_skip" in layer_names(model, keras.layers.Add)) == values[f"skip_{i}"]
        dropout = [n for n in layer_names(model, keras.layers.Dropout) if n == f"dense_{i}_dropout"]
        assert bool(dropout) == (values[f"dropout_{i}"] > 0)
    assert f"dense_{depth}" not in [layer.name for layer in model.layers]
    x = np.random.default_rng(seed).random((8, 13)).astype("float32")
    assert model.predict(x, verbose=0).shape == (8, 3)


def test_spaces_reject_bad_settings():
    with pytest.raises(ValueError, match="operations must hold only"):
        CellSpace(input_shape=(8, 8, 1), num_classes=10, operations=["conv5x5"])
    with pytest.raises(ValueError, match="num_nodes must be an int >= 2, got 1"):
        CellSpace(input_shape=(8, 8, 1), num_classes=10, num_nodes=1)
    with pytest.raises(ValueError, match="task must be 'classification' or 'regression'"):
        DenseSpace(input_dim=4, num_outputs=1, task="ranking")


@pytest.mark.parametrize("space, kwargs, message", [
    ("cell", dict(filters=[8, 0]), r"filters must hold ints >= 1, got \[0\] in \[8, 0\]"),
    ("cell", dict(filters=[8.5]), r"filters must hold ints >= 1, got \[8.5\]"),
    ("cell", dict(filters=8), r"filters must be a non-empty list without repeats, got 8"),
    ("cell", dict(learning_rates=[-1.0]), r"learning_rates must hold numbers > 0, got \[-1.0\]"),
    ("cell", dict(input_shape=(0, 8, 1)), r"input_shape must be .* ints >= 1, got \(0, 8, 1\)"),
    ("cell", dict(input_shape=("8", 8, 1)), r"input_shape must be .* got \('8', 8, 1\)"),
    ("dense", dict(widths=[0, 4]), r"widths must hold ints >= 1, got \[0\]"),
    ("dense", dict(dropouts=[1.5]), r"dropouts must hold numbers in \[0, 1\), got \[1.5\]"),
    ("dense", dict(dropouts=[-0.1]), r"dropouts must hold numbers in \[0, 1\), got \[-0.1\]"),
    ("dense", dict(activations=["relu", "nope"]),
     r"activations must hold Keras activation names, got \['nope'\]"),
])
def test_space_choices_are_checked_before_any_model_is_built(space, kwargs, message):
    # Each was accepted and failed at build time with a Keras error (or built a
    # zero-width layer, trained by gradient ascent).
    with pytest.raises(ValueError, match=message):
        if space == "cell":
            CellSpace(**{"input_shape": (8, 8, 1), "num_classes": 10, **kwargs})
        else:
            DenseSpace(input_dim=4, num_outputs=2, **kwargs)


def test_spaces_take_numpy_numbers_and_arrays_as_python_values():
    # Were: "widths must hold ints >= 1" for np.int64(16), "not a list" for arrays.
    dense = DenseSpace(input_dim=np.int64(64), num_outputs=10, widths=[np.int64(16)],
                       dropouts=np.array([0.0, 0.25]), learning_rates=[np.float32(0.5)])
    assert dense.widths == (16,) and dense.dropouts == (0.0, 0.25)
    assert dense.learning_rates == (0.5,)
    assert {type(v) for v in dense.widths + dense.dropouts + dense.learning_rates} == {int, float}
    cell = CellSpace(input_shape=np.array([8, 8, 1]), num_classes=10,
                     filters=[np.int64(8), np.int32(16)], operations=np.array(["skip", "none"]))
    assert cell.input_shape == (8, 8, 1) and cell.filters == (8, 16)
    assert cell.operations == ("skip", "none") and type(cell.operations[0]) is str
    model = sampled_model(cell, seed=0)[1]
    assert model.output_shape == (None, 10)
    with pytest.raises(ValueError, match=r"filters must hold ints >= 1, got \[0\]"):
        CellSpace(input_shape=(8, 8, 1), num_classes=10, filters=np.array([8, 0]))
    with pytest.raises(ValueError, match=r"widths must be a non-empty list without repeats"):
        DenseSpace(input_dim=4, num_outputs=2, widths=np.array([[8, 16]]))
    with pytest.raises(ValueError, match=r"widths must be a non-empty list without repeats"):
        DenseSpace(input_dim=4, num_outputs=2, widths=[[8], [16]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(tunable="yes"), "tunable must be True or False, got 'yes'"),
    (dict(tunable=None), "tunable must be True or False, got None"),
    (dict(name=3), "name must be a non-empty string or None, got 3"),
    (dict(name=""), "name must be a non-empty string or None, got ''"),
])
@pytest.mark.parametrize("space", ["cell", "dense"])
def test_spaces_check_their_name_and_tunable(space, kwargs, message):
    with pytest.raises(ValueError, match=message):
        if space == "cell":
            CellSpace(input_shape=(8, 8, 1), num_classes=10, **kwargs)
        else:
            DenseSpace(input_dim=4, num_outputs=2, **kwargs)
    assert DenseSpace(input_dim=4, num_outputs=2, tunable=np.bool_(False)).tunable is False
    assert CellSpace(input_shape=(8, 8, 1), num_classes=10, name=None).name is None  # as keras-tuner


def test_evolution_searches_the_dense_space(tmp_path):
    x, y = load_wine(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    tuner = EvolutionSearch(
        DenseSpace(input_dim=13, num_outputs=3, max_depth=3), objective="val_accuracy",
        max_trials=4, population_size=2, seed=0, directory=tmp_path, overwrite=True,
    )
    tuner.search(x[:130], y[:130], validation_data=(x[130:], y[130:]), epochs=2, verbose=0)
    trials = tuner.oracle.trials.values()
    assert len(trials) == 4 and all(t.status == "COMPLETED" for t in trials)
    # Distinct, but for the final race's re-evaluations (30% of max_trials: 1 here).
    searched = [t for t in trials][:4 - tuner.oracle.race_trials()]
    assert len({tuner.oracle.codec.hash(t.hyperparameters.values) for t in searched}) == len(
        searched) == 3
    assert tuner.get_best_models(1)[0].predict(x[:2], verbose=0).shape == (2, 3)


# ------------------------------------------------------------ AutoKeras blocks
def test_cell_and_dense_blocks_in_an_autokeras_search(tmp_path):
    import autokeras as ak

    from metanas.autokeras import EvolutionTuner
    from metanas.spaces import CellBlock, DenseSpaceBlock

    images, labels = load_digits(return_X_y=True)
    images = (images / 16.0).astype("float32").reshape(-1, 8, 8, 1)[:200]
    labels = labels[:200]
    table = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    image_in, table_in = ak.ImageInput(), ak.StructuredDataInput()
    merged = ak.Merge()([
        ak.SpatialReduction(reduction_type="global_avg")(
            CellBlock(num_stages=2, max_cells_per_stage=1, filters=[8])(image_in)),
        DenseSpaceBlock(max_depth=2, widths=[8, 16])(table_in),
    ])
    settings = dict(
        inputs=[image_in, table_in], outputs=ak.ClassificationHead()(merged),
        tuner=EvolutionTuner, seed=1, directory=tmp_path, project_name="blocks",
        population_size=2,
    )
    model = ak.AutoModel(max_trials=2, overwrite=True, **settings)
    model.fit([images[:160], table[:160]], labels[:160],
              validation_data=([images[160:], table[160:]], labels[160:]), epochs=1,
              callbacks=[keras.callbacks.EarlyStopping(patience=1)], verbose=0)
    oracle = model.tuner.oracle
    names = {h.name for h in oracle.hyperparameters.space}
    assert {f"cell_block_1/edge_{i}_{j}" for i, j in cell_edges(4)} <= names
    assert {"dense_space_block_1/depth", "dense_space_block_1/units_0"} <= names
    assert all(t.status == "COMPLETED" for t in oracle.trials.values())
    assert model.predict([images[:3], table[:3]], verbose=0).shape == (3, 1)
    # The graph with the metanas blocks reloads: the search resumes.
    resumed = ak.AutoModel(max_trials=3, overwrite=False, **settings)
    resumed.fit([images[:160], table[:160]], labels[:160],
                validation_data=([images[160:], table[160:]], labels[160:]), epochs=1,
                callbacks=[keras.callbacks.EarlyStopping(patience=1)], verbose=0)
    assert len(resumed.tuner.oracle.trials) == 3
