"""Which hyperparameters a trial's model actually used.

keras-tuner's canonical model-building function registers a layer's settings
only when it builds that layer::

    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(layers.Dense(hp.Int(f"units_{i}", 32, 512, step=32)))

After one trial with three layers, ``units_2`` is in the space for good, with
no condition on ``num_layers``: a trial with one layer still carries a value
for it, which changes nothing. AutoKeras's blocks do the same (a dense block's
``units_{i}``, a conv block's ``filters_{i}_{j}``). A strategy that mutates
only such a value, or proposes a configuration that differs from a tried one
only there, spends a whole training on a model it has already trained.

The tuner records the names read from a trial's ``HyperParameters`` while its
``run_trial`` runs (`recording_reads`): the build, the fit, and whatever a
``run_trial`` override reads before calling keras-tuner's (keras-tuner's
``batch_size`` recipe). It then tells the oracle which of the trial's values
went unread. Reads are recorded where keras-tuner and AutoKeras read a value:
``hp.Int(...)`` and the other registering methods, ``hp.get``, ``hp[name]``,
``name in hp``, ``hp.values[name]``, ``hp.values.get``. Any access to all the
values at once (iterating over them, copying, printing or comparing them)
counts as reading every one, so a model that reads its values some other way
is never thought to ignore them: at worst, nothing is learnt and the strategy
behaves as before. Values read outside ``run_trial`` (in an ``on_trial_begin``
override) are not seen.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, List, Optional, Set

from keras_tuner.src.engine.hyperparameters import hp_types

__all__ = ["ReadRecord", "recording_reads", "unread_decisions"]


class ReadRecord:
    """The names read from one trial's hyperparameters, across its builds."""

    def __init__(self) -> None:
        self.names: Set[str] = set()
        self.everything = False


class _RecordingValues(dict):
    """keras-tuner's ``HyperParameters.values`` that notes what is read from it
    (its reading methods are wrapped below the class)."""

    def __init__(self, values=(), record: Optional[ReadRecord] = None) -> None:
        super().__init__(values)
        # (A copy made as ``type(values)(...)``, by tf.nest, records for itself.)
        self._record = ReadRecord() if record is None else record

    def __reduce_ex__(self, protocol):  # pickle, copy.deepcopy: a plain dict
        self._record.everything = True
        return dict, (dict.copy(self),)


def _reads_one(method):
    def wrapped(self, name, *args):
        self._record.names.add(name)
        return method(self, name, *args)
    return wrapped


def _reads_all(method):
    def wrapped(self, *args):
        self._record.everything = True
        return method(self, *args)
    return wrapped


# One value by name; all of them at once (dict's own methods return plain dicts).
for _name in ("__getitem__", "get", "pop", "setdefault", "__contains__"):
    setattr(_RecordingValues, _name, _reads_one(getattr(dict, _name)))
for _name in ("__iter__", "keys", "values", "items", "copy", "popitem", "__repr__",
              "__eq__", "__ne__", "__or__", "__ror__"):
    setattr(_RecordingValues, _name, _reads_all(getattr(dict, _name)))


def _register_with_yaml() -> None:
    """Has PyYAML dump the values as the plain mapping they are (its safe dumper
    refused a dict subclass, its full one tagged it as a Python object)."""
    try:
        import yaml
    except ImportError:
        return

    def represent(dumper, data):
        return dumper.represent_dict(dict(data))  # (reads every value)

    # On the representers the dumpers (C ones too) inherit from: registering on a
    # dumper would give it a table of its own, which later registrations on its
    # representer would no longer reach. A dumper that has one already (someone
    # registered on it: `yaml.add_representer` does, on Dumper) gets it there too.
    classes = [yaml.representer.SafeRepresenter, yaml.representer.Representer]
    classes += [getattr(yaml, name) for name in ("SafeDumper", "Dumper", "CSafeDumper",
                                                 "CDumper") if hasattr(yaml, name)]
    for cls in classes:
        if cls in classes[:2] or "yaml_representers" in vars(cls):
            cls.add_representer(_RecordingValues, represent)


_register_with_yaml()


@contextlib.contextmanager
def recording_reads(hyperparameters, record: ReadRecord) -> Iterator[ReadRecord]:
    """Adds to ``record`` the names read from ``hyperparameters`` in the block.

    The values dict keeps its identity: values registered in the block (a
    name the build met for the first time) are in it afterwards.
    """
    original = hyperparameters.values
    if isinstance(original, _RecordingValues):  # nested: the outer block records
        yield record
        return
    recording = _RecordingValues(original, record)
    hyperparameters.values = recording
    try:
        yield record
    finally:
        if hyperparameters.values is recording:
            original.clear()
            original.update(dict.items(recording))
            hyperparameters.values = original
        else:  # the code replaced the values: what it read from them is unknown
            record.everything = True


def unread_decisions(hyperparameters, record: ReadRecord) -> Optional[List[str]]:
    """Active, tunable hyperparameters of the trial that nothing read, and values
    of names the model never registered (an ``initial_hps`` setting of a branch
    the model did not build), sorted; or None when the record cannot tell
    (nothing recorded, or everything read)."""
    if record.everything or not record.names:
        return None
    values = hyperparameters.values
    registered = {hp.name for hp in hyperparameters.space}
    active = {
        hp.name
        for hp in hyperparameters.space
        if not isinstance(hp, hp_types.Fixed) and hp.name in values
        and hyperparameters.is_active(hp)
    }
    return sorted((active | (set(values) - registered)) - record.names)
