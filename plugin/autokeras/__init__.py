"""metanas.autokeras: the metanas strategies as drop-in AutoKeras tuners.

AutoKeras takes ``tuner=`` as a name from its own table or as a subclass of
`autokeras.engine.tuner.AutoTuner` (not an instance). Both work:

    >>> import autokeras as ak
    >>> from metanas.autokeras import EvolutionTuner, register
    >>> clf = ak.ImageClassifier(tuner=EvolutionTuner, max_trials=10, seed=1)
    >>> register()                      # once: adds "evolution", "rl", ...
    >>> clf = ak.ImageClassifier(tuner="evolution", max_trials=10, seed=1)

Importing this package does not import AutoKeras; the tuner classes do, when
first used, and `register` says clearly when AutoKeras is missing.
"""

from __future__ import annotations

import importlib
from typing import Dict

__all__ = [
    "EvolutionTuner",
    "MetaTuner",
    "RLControllerTuner",
    "RandomTuner",
    "TUNER_NAMES",
    "register",
]

#: The names `register` adds to AutoKeras's tuner table, and their classes.
TUNER_NAMES: Dict[str, str] = {
    "evolution": "EvolutionTuner",
    "rl": "RLControllerTuner",
    "metanas-random": "RandomTuner",
    "meta": "MetaTuner",
}

_MISSING = (
    "metanas.autokeras needs AutoKeras (pinned: autokeras==3.0.0), which is not "
    "importable here ({error}). Install it with `pip install autokeras==3.0.0` "
    "or `pip install metanas`."
)


def _tuners_module():
    try:
        importlib.import_module("autokeras")
    except ImportError as error:
        raise ImportError(_MISSING.format(error=error)) from error
    return importlib.import_module("metanas.autokeras.tuners")


def available_tuners() -> Dict[str, type]:
    """The tuner classes usable here, by registered name (``"rl"`` needs the RL oracle)."""
    module = _tuners_module()
    return {
        name: getattr(module, cls)
        for name, cls in TUNER_NAMES.items()
        if getattr(module, cls) is not None and getattr(module, cls).is_available()
    }


def register() -> Dict[str, type]:
    """Adds the metanas tuners to AutoKeras's tuner table.

    After one call ``ak.ImageClassifier(tuner="evolution")`` (or ``"rl"``,
    ``"metanas-random"``, ``"meta"``) works like AutoKeras's own names, and
    an unknown name's error lists them all. Calling it again changes nothing.

    Returns:
        The names registered (now or before) and their tuner classes.

    Raises:
        ImportError: AutoKeras is not installed.
        ValueError: A name is already taken in AutoKeras's table by a tuner
            that is not the metanas one (it is not overwritten).
    """
    tuners = available_tuners()
    from autokeras import auto_model

    table = auto_model.TUNER_CLASSES
    for name, cls in tuners.items():
        taken = table.get(name)
        if taken is not None and taken is not cls:
            raise ValueError(
                f"AutoKeras's tuner name {name!r} is already taken by "
                f"{taken.__module__}.{taken.__qualname__}; metanas does not replace it. "
                f"Pass tuner={cls.__name__} (the class) instead."
            )
    table.update(tuners)
    if not getattr(auto_model.get_tuner_class, "metanas", False):
        # AutoKeras's own message lists its four names only: with the metanas
        # names in the table, a typo should list them all.
        def get_tuner_class(tuner):
            if isinstance(tuner, str) and tuner in auto_model.TUNER_CLASSES:
                return auto_model.TUNER_CLASSES[tuner]
            raise ValueError(f"tuner must be one of {sorted(auto_model.TUNER_CLASSES)} or a "
                             f"tuner class, got {tuner!r}.")

        get_tuner_class.metanas = True
        auto_model.get_tuner_class = get_tuner_class
    return tuners


def __getattr__(name: str):
    if name in TUNER_NAMES.values():
        return getattr(_tuners_module(), name)
    raise AttributeError(f"module 'metanas.autokeras' has no attribute {name!r}")
