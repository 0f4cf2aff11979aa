"""The base oracle every metanas strategy extends.

It adds to `keras_tuner.Oracle` what all strategies share: one seeded random
source (a numpy ``Generator`` whose state is JSON), the search-space codec,
AutoKeras-style ``initial_hps`` served first, de-duplicated proposals with an
exact end when a finite space is exhausted, and one hook, `on_trial_result`,
called once for every trial that ends for good (completed or failed).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import hashlib
import inspect
import itertools
import json
import math
import numbers
import os
import random
import re
import threading
import time
import warnings
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import keras_tuner
from keras_tuner.engine import trial as trial_module
from keras_tuner.src.backend import io as kt_io
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine.objective import MultiObjective

from metanas.tuners import distributed
from metanas.tuners.codec import Config, SearchSpaceCodec
from metanas.tuners.storage import save_json_atomically

__all__ = [
    "MetanasOracle", "SavedStateError", "Setting", "check_rate", "check_int", "is_oversized",
    "oversized_parameters", "release_oracle",
]

TrialStatus = trial_module.TrialStatus

#: Proposals that collide with tried configurations before the oracle looks
#: for an unseen one by enumerating the (finite) space.
_MAX_COLLISIONS = 50
#: Spaces up to this many configurations are enumerated to find unseen ones.
_ENUMERATE_LIMIT = 200_000
#: Draws from the prior after a listing cut at `_ENUMERATE_LIMIT` found nothing
#: untried, before a space is taken as used up.
_CUT_LISTING_DRAWS = 20_000
#: The longest ``heartbeat_timeout`` (about 31 years; None never reclaims).
_MAX_HEARTBEAT_TIMEOUT = 1e9


def synchronized(method):
    """`keras_tuner.synchronized` (one thread in an oracle at a time), released on error.

    keras-tuner's keeps the oracle's lock when the method raises (too many
    consecutive failures, a bad trial id): in a chief, every later call from
    another thread, its own serving loop's included, would wait forever.
    """
    import functools

    from keras_tuner.src.engine import oracle as kt_oracle

    @functools.wraps(method)
    def wrapped(oracle, *args, **kwargs):
        if method.__name__ == "end_trial" and (
            (args and isinstance(args[0], str)) or "trial_id" in kwargs or "status" in kwargs
        ):
            # keras-tuner's old signature, end_trial(trial_id, status="COMPLETED").
            trial_id = kwargs.pop("trial_id", args[0] if args else None)
            status = kwargs.pop("status", args[1] if len(args) > 1 else "COMPLETED")
            # The trial keeps the values it ran with (keras-tuner's own shim
            # sends the space's defaults, which end_trial copies over them).
            stored = oracle.trials.get(trial_id)
            space = oracle.get_space() if stored is None else stored.hyperparameters.copy()
            args = (trial_module.Trial(space, trial_id, status),)
        thread = threading.current_thread().name
        acquire = kt_oracle.THREADS[oracle] != thread
        if acquire:
            kt_oracle.LOCKS[oracle].acquire()
            kt_oracle.THREADS[oracle] = thread
        try:
            return method(oracle, *args, **kwargs)
        finally:
            if acquire:
                kt_oracle.THREADS[oracle] = None
                kt_oracle.LOCKS[oracle].release()

    return wrapped


def release_oracle(oracle) -> None:
    """Drops ``oracle`` from keras-tuner's module-level lock tables.

    keras-tuner's ``synchronized`` decorator keys a lock and a thread name by
    oracle in two module-level dicts (``LOCKS``, ``THREADS``) that never
    shrink, so every oracle a process has searched with stays alive, with all
    its trials (and the RL controller's policy), for the life of the process:
    about 1 MB per 30-trial controller search on a table, which adds up in
    meta-training. Called when a search ends; a later call on the oracle adds
    it back.
    """
    from keras_tuner.src.engine import oracle as oracle_module

    holder = oracle_module.THREADS.get(oracle)
    if holder is not None and holder != threading.current_thread().name:
        return  # another thread (a chief's gRPC handler) is inside one of its methods
    for table in (oracle_module.LOCKS, oracle_module.THREADS):
        table.pop(oracle, None)


class SavedStateError(ValueError):
    """A saved search that cannot be resumed as it is: a file of it is corrupt or
    gone, or the tuner resuming it has another objective. Nothing of it was
    changed; the message names the file and how to go on."""

    @classmethod
    def corrupt(cls, what: str, path: str, reason: Any) -> "SavedStateError":
        """The error for the saved ``what`` (``"trial"``, ``"tuner state"``, ...)
        at ``path`` that cannot be loaded, for ``reason`` (an error, or text)."""
        if isinstance(reason, KeyError):
            reason = f"it has no {reason.args[0]!r}"
        return cls(f"The saved {what} {path} is corrupt ({reason}). It was left as it is, "
                   "with every other file of the search: restore it, or start a new search "
                   "with overwrite=True or another project_name.")


#: Keys of every keras-tuner `Oracle`'s saved state (`Oracle.get_state`).
KT_ORACLE_KEYS = frozenset({"hyperparameters", "seed", "tried_so_far", "end_order"})


class ShortSearchWarning(UserWarning):
    """``max_trials`` is too few for a part of the strategy to run at all."""


class ResumedSettingsWarning(UserWarning):
    """A saved search is resumed with other strategy settings than it ran with."""


#: Settings that a resumed search changes without a warning: keras-tuner's own,
#: and the seed (a saved search keeps its own).
SETTINGS_FREE_ON_RESUME = frozenset({
    "seed", "hyperparameters", "allow_new_entries", "tune_new_entries",
    "max_retries_per_trial", "max_consecutive_failed_trials", "initial_hps",
    "heartbeat_timeout", "max_lost_retries"})


class ShortNoiseCheckWarning(ShortSearchWarning):
    """``noisy_racing_fraction`` leaves too few trials for the noise check to run."""


@functools.lru_cache(maxsize=None)
def keyword_settings(oracle_class: type) -> Tuple[Tuple[str, Any], ...]:
    """``(name, default)`` of every keyword-only setting of ``oracle_class`` and of
    its metanas bases, the bases' first (read once per class: a state is saved
    at every trial)."""
    settings: Dict[str, Any] = {}
    for cls in reversed(inspect.getmro(oracle_class)):
        if isinstance(cls, type) and issubclass(cls, MetanasOracle):
            for name, parameter in inspect.signature(cls.__init__).parameters.items():
                if parameter.kind is parameter.KEYWORD_ONLY:
                    settings[name] = parameter.default
    return tuple(settings.items())


def check_int(name: str, value: Any, *, low: int, high: Optional[int] = None) -> int:
    """Validates an integer setting; raises ValueError naming value and range."""
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int {allowed}, got {value!r}.")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an int {allowed}, got {value!r}.")
    return int(value)


def check_rate(name: str, value: Any) -> float:
    """Validates a probability setting; raises ValueError naming value and range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    return float(value)


#: keras-tuner's message for a model over ``max_model_size`` (Tuner._try_build).
_OVERSIZED = re.compile(r"FailedTrialError: Oversized model: (\d+) parameters")


def oversized_parameters(trial) -> Optional[int]:
    """The parameters of ``trial``'s model if it failed for exceeding
    ``max_model_size``, else None."""
    found = _OVERSIZED.search(trial.message or "") if trial.status == TrialStatus.FAILED else None
    return None if found is None else int(found[1])


def is_oversized(trial) -> bool:
    """Whether ``trial`` failed because its model exceeded ``max_model_size``."""
    return oversized_parameters(trial) is not None


def _unreadable_files(trial_files: Sequence[str],
                      oracle_file: str) -> Tuple[Optional[str], Any]:
    """The first of a saved search's files that keras-tuner cannot load, and why:
    a trial file (`Trial.load`) or the oracle's (not a JSON object); (None, None)
    if none. Called after a reload failed, to name the file."""
    for path in [*trial_files, oracle_file]:
        try:  # (keras-tuner's reader: local paths, and gs:// through TensorFlow)
            if path != oracle_file:
                trial_module.Trial.load(path)
                continue
            with kt_io.File(path, "r") as handle:
                state = json.loads(handle.read())
        except (ValueError, KeyError, TypeError, AttributeError) as error:  # (not I/O's)
            return path, error
        if not isinstance(state, dict):
            return path, f"a JSON {type(state).__name__}, where an object was expected"
    return None, None


def _objective_state(objective) -> Any:
    """``objective`` as the saved state records it (JSON): what it scores and how."""
    parts = getattr(objective, "objectives", None)
    if parts:  # several objectives
        return [_objective_state(part) for part in parts]
    from metanas.tuners.objectives import ConstrainedObjective

    described = {"name": str(objective.name), "direction": str(objective.direction)}
    if isinstance(objective, ConstrainedObjective):  # its settings decide its scores too
        described.update(metric=objective.metric, cost=objective.cost,
                         target=objective.target, hard=objective.hard,
                         weights=list(objective.weights))
    # (Another class's own attributes need be neither JSON nor comparable.)
    return described


def _describe_objective(state: Any) -> str:
    """A saved objective (`_objective_state`) as a person reads it."""
    if isinstance(state, list):
        return "[" + ", ".join(_describe_objective(part) for part in state) + "]"
    if not isinstance(state, dict):
        return repr(state)
    extra = {k: v for k, v in state.items() if k not in ("name", "direction")}
    return (f"{state.get('name')!r} ({state.get('direction')}"
            + "".join(f", {k}={v!r}" for k, v in extra.items()) + ")")


@dataclasses.dataclass(frozen=True)
class Setting:
    """A strategy setting the meta-layer may tune, declared without Optuna.

    Args:
        kind: ``"int"``, ``"float"`` or ``"categorical"``.
        low, high: Bounds of a numeric setting (inclusive).
        log: Search a numeric setting on a log scale.
        choices: The values of a categorical setting.
        default: The value the strategy uses when not told otherwise.
    """

    kind: str
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    choices: tuple = ()
    default: Any = None


_UNSEEDED = itertools.count()


def _unseeded_seed() -> int:
    """A seed for an oracle given none, saved in its state as a given one is.

    Not keras-tuner's ``random.randint(1, 10000)``, which advanced the caller's
    global stream and made unseeded searches in a loop repeat each other: a
    hash of the global ``random``'s state (read, not drawn from) and of how
    many oracles this process made before. A script that seeds ``random``
    (``keras.utils.set_random_seed``) gets the same searches on every run.
    """
    text = repr((random.getstate(), next(_UNSEEDED)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") % (2**31 - 1) + 1


def _plain(value: Any) -> Any:
    """A numpy number as a Python one; a float32 as the decimal it prints as
    (``np.float32(0.001)`` is 0.001, not 0.0010000000474974513: an option)."""
    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        return float(str(value))
    return value.item() if isinstance(value, np.generic) else value


class MetanasOracle(keras_tuner.Oracle):
    """Base class of the metanas oracles.

    Subclasses implement `propose` (and usually `on_trial_result`), and extend
    `get_state`/`set_state` with their own JSON-serialisable state.

    Args:
        objective: As for `keras_tuner.Oracle`.
        max_trials: Total number of trials to run at most.
        seed: Seed of the oracle's own random source. Equal seeds give equal
            trials; the global ``random``/``np.random`` states are never drawn
            from (None: a seed made from the global ``random``'s state, so a
            script that seeds it repeats its searches; kept in the state).
        hyperparameters: Optional `HyperParameters` to override or pre-register
            parts of the search space (e.g. ``Fixed`` values).
        allow_new_entries: As for `keras_tuner.Oracle`.
        tune_new_entries: As for `keras_tuner.Oracle`.
        max_retries_per_trial: As for `keras_tuner.Oracle`.
        max_consecutive_failed_trials: As for `keras_tuner.Oracle`.
        initial_hps: Configurations (``{name: value}`` dicts, possibly partial)
            tried first, in order; AutoKeras passes its task-specific
            known-good configurations this way. Missing or invalid values are
            filled from the space; duplicates are skipped. Values of names the
            space does not hold yet (a branch's settings, which the model
            registers when it builds that branch) are passed on to the model,
            as keras-tuner does.
        heartbeat_timeout: Seconds without a heartbeat after which a running
            trial of a distributed search counts as lost (its worker died): it
            is handed to the next worker that asks, or fails after
            ``max_lost_retries`` losses. Only trials whose worker sends
            heartbeats (metanas tuners do) are ever reclaimed. None disables it.
        max_lost_retries: How many times a lost trial is handed out again.
        incumbent_evaluations: Evaluations a configuration needs before it
            can be the incumbent (what `get_best_trials` returns first). A
            challenger whose mean score beats the incumbent's is evaluated
            again, before any new configuration, until it has that many
            evaluations or falls behind, so one lucky evaluation (a noisy
            validation score) never makes a configuration the incumbent:
            intensification, as in SMAC (Hutter, Hoos & Leyton-Brown,
            "Sequential Model-Based Optimization for General Algorithm
            Configuration", LION 2011). A configuration is judged by the mean
            score of its evaluations, by the strategy and by
            `get_best_trials`. 1 (the default) never evaluates a configuration
            twice. Single-objective searches only.
        racing_fraction: Share of ``max_trials`` spent at the end of the
            search re-evaluating its best configurations instead of trying
            new ones, in [0, 0.9): with noisy scores (a validation score
            differs from one training run to the next), the best single
            observation is mostly a lucky draw, and the search returns the
            winner of this race instead. When the last
            ``int(racing_fraction * max_trials)`` trials begin, the
            ``finalists`` configurations with the best mean scores race by
            sequential halving (Karnin, Koren & Somekh, "Almost Optimal
            Exploration in Multi-Armed Bandits", ICML 2013): the race's trials
            are split into ``ceil(log2(finalists))`` rounds, round ``r``
            evaluates the ``ceil(finalists / 2**r)`` finalists with the best
            mean scores so far (the one evaluated least first; running
            trials count, so parallel workers spread out), and the finalist
            with the best mean among those evaluated about as often as the
            most evaluated one (the last round's) is the incumbent.
            Re-evaluating the elite is the classic remedy for
            noise in evolutionary search (Jin & Branke, "Evolutionary
            Optimization in Uncertain Environments - A Survey", IEEE TEVC
            2005). 0 never races; without ``max_trials`` there is no end to
            race at. None (the default) is the strategy's
            ``default_racing_fraction`` (0 here, tuned in `EvolutionOracle`)
            for a single objective and 0 for several; a race needs a single
            objective.
        finalists: Configurations that enter the race, at least 2; None is
            the strategy's ``default_finalists``.
        noisy_racing_fraction: The race's share of ``max_trials`` when the
            scores prove noisy, in [``racing_fraction``, 0.9). When it is
            larger than ``racing_fraction``, the race begins this early, and
            once each finalist has a second evaluation the search checks
            whether the second scores repeat the first (``finalists`` must be
            at least 3): their correlation across the finalists (test-retest
            reliability) below ``repeat_correlation`` (0.3), or undefined
            (tied scores), means the order
            among the best configurations found is mostly noise, and the race
            goes on to the end; otherwise it stops, the search goes back to
            new configurations, and a race of ``racing_fraction`` ends it. The
            sample size thus adapts to the noise measured, as in adaptive
            sampling for noisy evolutionary search (Cantú-Paz, "Adaptive
            Sampling for Noisy Problems", GECCO 2004). The outcome is
            `noise_check`, kept in the saved state. None (the default) is
            ``racing_fraction``: no check. Measured on the benchmark's tuning
            tasks (benchmarks/noise_check.md), 0.4 with evolution's defaults
            lowers the regret on the noisy HPOBench tables and raises it on
            NAS-Bench-201 and HPOLib, so it is offered, and in
            `settings_space` for the meta-layer, not the default.
    """

    #: ``racing_fraction`` and ``finalists`` when not given (a subclass's tuned defaults).
    default_racing_fraction: float = 0.0
    default_finalists: int = 4
    #: ``noisy_racing_fraction`` when neither it nor ``racing_fraction`` is
    #: given (at least ``default_racing_fraction``; equal to it: no check).
    default_noisy_racing_fraction: float = 0.0
    #: Below this correlation between the finalists' first and second scores,
    #: they are noise (see ``noisy_racing_fraction``).
    repeat_correlation: float = 0.3

    def __init__(
        self,
        objective=None,
        max_trials: Optional[int] = None,
        *,
        seed: Optional[int] = None,
        hyperparameters=None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        initial_hps: Optional[Sequence[Mapping[str, Any]]] = None,
        heartbeat_timeout: Optional[float] = 120.0,
        max_lost_retries: int = 2,
        incumbent_evaluations: int = 1,
        racing_fraction: Optional[float] = None,
        finalists: Optional[int] = None,
        noisy_racing_fraction: Optional[float] = None,
    ) -> None:
        self.incumbent_evaluations = check_int(
            "incumbent_evaluations", incumbent_evaluations, low=1
        )
        for name, fraction in (("racing_fraction", racing_fraction),
                               ("noisy_racing_fraction", noisy_racing_fraction)):
            if fraction is not None and (
                isinstance(fraction, bool)
                or not isinstance(fraction, (int, float, np.number))
                or not 0.0 <= float(fraction) < 0.9
            ):
                raise ValueError(
                    f"{name} must be a number in [0, 0.9) or None, got {fraction!r}."
                )
        self.finalists = check_int(
            "finalists", self.default_finalists if finalists is None else finalists, low=2
        )
        if heartbeat_timeout is not None and (
            isinstance(heartbeat_timeout, bool)
            or not isinstance(heartbeat_timeout, numbers.Real)
            or not 0 < heartbeat_timeout <= _MAX_HEARTBEAT_TIMEOUT
        ):
            # (A worker beats every timeout / 4 s, and a thread's wait takes at
            # most ~9e9 s: inf killed every worker's heartbeat thread.)
            raise ValueError(
                f"heartbeat_timeout must be a number of seconds > 0 and at most "
                f"{_MAX_HEARTBEAT_TIMEOUT:.0e}, or None never to reclaim a trial; "
                f"got {heartbeat_timeout!r}."
            )
        self.heartbeat_timeout = None if heartbeat_timeout is None else float(heartbeat_timeout)
        self.max_lost_retries = check_int("max_lost_retries", max_lost_retries, low=0)
        check_int("max_retries_per_trial", max_retries_per_trial, low=0)
        check_int("max_consecutive_failed_trials", max_consecutive_failed_trials, low=1)
        if hyperparameters is not None and not isinstance(
            hyperparameters, keras_tuner.HyperParameters
        ):
            raise ValueError(
                "hyperparameters must be a keras_tuner.HyperParameters or None, "
                f"got {hyperparameters!r}."
            )
        if max_trials is not None:  # (a numpy int as a Python int: the state is JSON)
            max_trials = check_int("max_trials", max_trials, low=1)
        if seed is not None:
            seed = check_int("seed", seed, low=0)
        if initial_hps is not None and (
            not isinstance(initial_hps, Sequence)
            or isinstance(initial_hps, (str, bytes))
            or not all(isinstance(v, Mapping) for v in initial_hps)
        ):
            raise ValueError(
                "initial_hps must be a list of {name: value} dicts, "
                f"got {initial_hps!r}."
            )
        for name, value in (("allow_new_entries", allow_new_entries),
                            ("tune_new_entries", tune_new_entries)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}.")
        from metanas.tuners.objectives import create_objective

        if seed is None:
            seed = _unseeded_seed()
        super().__init__(
            objective=create_objective(objective),
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        multi = isinstance(self.objective, MultiObjective)
        if noisy_racing_fraction is None:
            # Given a race, the user gets that race; no race on a Pareto front.
            noisy_racing_fraction = (
                racing_fraction if racing_fraction is not None or multi
                else max(self.default_noisy_racing_fraction, self.default_racing_fraction)
            )
        if racing_fraction is None:  # the strategy's default; no race on a Pareto front
            racing_fraction = 0.0 if multi else self.default_racing_fraction
        self.racing_fraction = float(racing_fraction)
        self.noisy_racing_fraction = float(noisy_racing_fraction or 0.0)
        if self.noisy_racing_fraction < self.racing_fraction:
            raise ValueError(
                f"noisy_racing_fraction must be at least racing_fraction "
                f"({self.racing_fraction}), got {noisy_racing_fraction!r}."
            )
        if self._checks_noise and self.finalists < 3:
            raise ValueError(
                f"noisy_racing_fraction={self.noisy_racing_fraction} checks the noise over "
                f"the finalists' scores, which needs finalists >= 3, got {self.finalists}."
            )
        if multi:
            for name, value, off in (
                ("incumbent_evaluations", self.incumbent_evaluations, 1),
                ("racing_fraction", self.racing_fraction, 0.0),
                ("noisy_racing_fraction", self.noisy_racing_fraction, 0.0),
            ):
                if value != off:
                    raise ValueError(
                        f"{name}={value} needs a single objective (a configuration "
                        f"is judged by its mean score), got "
                        f"{len(self.objective.objectives)} objectives; use {off} for a "
                        f"Pareto search."
                    )
        if seed is not None:
            # keras-tuner's `seed or random.randint(...)` would turn 0 into a
            # random seed, and an unrepeatable search.
            self.seed = self._seed_state = int(seed)
        # numpy numbers as plain ones (a row of a pandas table): they are saved
        # in the oracle's JSON state.
        self.initial_hps: List[Dict[str, Any]] = [
            {k: _plain(x) for k, x in dict(v).items()}
            for v in copy.deepcopy(list(initial_hps or []))
        ]
        self._rng = np.random.default_rng(self.seed)
        self._initial_cursor = 0
        self._codec: Optional[SearchSpaceCodec] = None
        # Monotonic times of the last heartbeat of each trial and of the last
        # request of each tuner: liveness, not state (clocks differ per process).
        self._heartbeats: Dict[str, float] = {}
        self._tuner_seen: Dict[str, float] = {}
        self._lost_runs: Dict[str, int] = collections.defaultdict(int)
        # (len(end_order), {config hash: [fitness of each finished evaluation]},
        #  {config hash: their mean}), rebuilt when a trial ends.
        self._config_cache: Optional[list] = None
        # Configuration hashes in the final race, best first when it began,
        # and the trial number it began at.
        self._race: List[str] = []
        self._race_start: Optional[int] = None
        # The outcome of the noise check (see ``noisy_racing_fraction``).
        self.noise_check: Optional[Dict[str, Any]] = None
        # The trial count at which the strategy had no untried configuration
        # left: with racing on, its race runs from there (`_race_start_trial`).
        self._exhausted_at: Optional[int] = None
        # [trial count, max_trials, race trials] when the strategy last had
        # nothing to propose with no trial running: the search ended there,
        # short of max_trials (a chief run again on it ends at once, unless
        # those changed: `search_finished`).
        self._ran_out: Optional[List[Optional[int]]] = None
        early = self.race_trials()  # the early race, before any check
        if self._checks_noise and self.max_trials and early < self.finalists:
            warnings.warn(
                f"noisy_racing_fraction={self.noisy_racing_fraction} of max_trials="
                f"{self.max_trials} is {early} trials, fewer than the {self.finalists} the "
                f"noise check needs (one per finalist): it will not run, and the last {early} "
                "trials race. Raise max_trials or lower finalists.",
                ShortNoiseCheckWarning, stacklevel=2)
        elif self._checks_noise and self.max_trials and early - self.finalists <= (
                final := int((self.racing_fraction or 0) * self.max_trials)):
            # The check takes `finalists` trials of the early race; a calm
            # verdict frees the rest beyond the final race's: none here.
            warnings.warn(
                f"noisy_racing_fraction={self.noisy_racing_fraction} of max_trials="
                f"{self.max_trials} is {early} trials: after the noise check's "
                f"{self.finalists}, no more than the final race's {final}, so a calm verdict "
                "frees no trial for the search. Raise max_trials, or lower finalists or "
                "racing_fraction.",
                ShortNoiseCheckWarning, stacklevel=2)
        # Trials that evaluate a configuration again (race, repeats): trial id
        # -> that configuration's hash, which they keep (`_record_values`).
        self._repeat_of: Dict[str, str] = {}
        # How many trials of `end_order` the strategy has learnt from: keras-tuner
        # saves a trial's end before `on_trial_result` runs, so a kill between
        # the two is made good on reload.
        self._learned = 0
        # Completed trials' values that their model never read (`note_unused`),
        # and, built from them, the index `_read_index` returns.
        self._unused: Dict[str, List[str]] = {}
        self._read_keys: Optional[Dict[tuple, tuple]] = None
        # The names a trial held when its note came (until it ends).
        self._noted_names: Dict[str, set] = {}
        # Why a distributed search stopped early (too many consecutive
        # failures): every worker that asks for a trial is then told to stop.
        self.failure: Optional[str] = None

    # ------------------------------------------------------------- settings
    @classmethod
    def settings_space(cls) -> Dict[str, Setting]:
        """The strategy's tunable settings, for the meta-layer.

        Every strategy has ``incumbent_evaluations`` (random search with it is
        ROAR, SMAC's random online aggressive racing); subclasses add theirs.
        """
        return {
            "incumbent_evaluations": Setting("int", 1, 6, default=1),
            "racing_fraction": Setting("float", 0.0, 0.4, default=cls.default_racing_fraction),
            "finalists": Setting("int", 2, 16, log=True, default=cls.default_finalists),
            "noisy_racing_fraction": Setting(
                "float", 0.0, 0.6,
                default=max(cls.default_noisy_racing_fraction, cls.default_racing_fraction)),
        }

    @classmethod
    def settings_from_params(cls, params: Mapping[str, Any]) -> Dict[str, Any]:
        """Constructor keywords from values of `settings_space`.

        As they are, but ``noisy_racing_fraction`` is at least
        ``racing_fraction`` (a noisy race is never the shorter one), and equal
        to it (no noise check) with fewer than 3 finalists.
        """
        kwargs = dict(params)
        if "noisy_racing_fraction" in kwargs and "racing_fraction" in kwargs:
            noisy = max(kwargs["noisy_racing_fraction"], kwargs["racing_fraction"])
            if kwargs.get("finalists", cls.default_finalists) < 3:  # too few to check
                noisy = kwargs["racing_fraction"]
            kwargs["noisy_racing_fraction"] = noisy
        return kwargs

    # ---------------------------------------------------------------- codec
    @property
    def codec(self) -> SearchSpaceCodec:
        """The codec over the current space (rebuilt when the space is replaced)."""
        if self._codec is None or self._codec.hyperparameters is not self.hyperparameters:
            self._codec = SearchSpaceCodec(self.hyperparameters)
        return self._codec

    # -------------------------------------------------------------- fitness
    @property
    def maximize(self) -> bool:
        return self.objective.direction == "max"

    def score_trial(self, trial) -> None:
        super().score_trial(trial)
        if trial.score is not None and math.isinf(trial.score):
            # A diverged run (an infinite loss) failed, as keras-tuner takes a NaN
            # to have: it would otherwise be the best trial, and poison the
            # strategies' statistics.
            trial.message = f"the objective {self.objective.name!r} was {trial.score}."
            trial.score = math.nan

    def fitness(self, trial) -> float:
        """The trial's score as a fitness to maximise; -inf when it failed."""
        if trial.status != TrialStatus.COMPLETED or trial.score is None:
            return -math.inf
        score = float(trial.score)
        if not math.isfinite(score):  # NaN or a diverged (infinite) score: a failure
            return -math.inf
        return score if self.maximize else -score

    def _config_fitness(self) -> Dict[str, List[float]]:
        """The fitness of every finished evaluation, grouped by configuration.

        Extended by the trials that ended since the last call (``end_order``
        only grows while a search runs), not rebuilt: a rebuild per trial cost
        O(trials), 15 ms a trial at 3,000 trials.
        """
        order = self.end_order
        cache = self._config_cache
        if cache is None or cache[0] is not order or cache[1] > len(order):
            cache = self._config_cache = [order, 0, {}, {}]
        _, done, groups, means = cache
        if done < len(order):
            for trial_id in order[done:]:
                key = self._id_to_hash[trial_id]
                values = groups.setdefault(key, [])
                values.append(self.fitness(self.trials[trial_id]))
                means[key] = float(np.mean(values))
            cache[1] = len(order)
        return groups

    def _config_means(self) -> Dict[str, float]:
        """The mean fitness of each configuration's finished evaluations."""
        self._config_fitness()
        return self._config_cache[3]

    def config_fitness(self, trial) -> float:
        """The mean fitness of the trial's configuration over its evaluations.

        For a search that never evaluates a configuration again this is the
        trial's own `fitness`.
        """
        if not self.repeats_configurations:
            return self.fitness(trial)
        mean = self._config_means().get(self._id_to_hash[trial.trial_id])
        return self.fitness(trial) if mean is None else mean

    def evaluations_of(self, trial_id: str) -> List[float]:
        """The scores of every completed evaluation of trial ``trial_id``'s
        configuration, in the order they ended.

        One score for a configuration evaluated once. A search that repeats
        configurations (the final race, ``incumbent_evaluations``) ranks them
        by the mean of these (`get_best_trials`), and reports each by its best
        trial: keras-tuner's "Best ... So Far" and ``results_summary()`` show
        that trial's score, which need not be the highest score shown. A
        failed evaluation has no score and is left out here; it ranks its
        configuration last.

        Raises:
            ValueError: ``trial_id`` is not a trial of this search.
        """
        if trial_id not in self.trials:
            raise ValueError(f"trial_id {trial_id!r} is not a trial of this search.")
        key = self._id_to_hash.get(trial_id)
        return [
            float(self.trials[t].score) for t in self.end_order
            if self._id_to_hash.get(t) == key and self.trials[t].status == TrialStatus.COMPLETED
        ]

    def _ranked_configurations(self) -> List[str]:
        """Configuration hashes, best first.

        The final race's configurations come first (see ``racing_fraction``):
        those evaluated about as often as the most evaluated one (at most one
        evaluation fewer: they reached the race's last round) by mean fitness,
        then the race's others. Then those with ``incumbent_evaluations``
        evaluations (trusted) by mean fitness, then the others by mean fitness.
        """
        groups, means = self._config_fitness(), self._config_means()
        ranked = sorted(
            groups,
            key=lambda k: (len(groups[k]) >= self.incumbent_evaluations, means[k]),
            reverse=True,
        )
        raced = [k for k in self._race if k in groups]
        if not raced:
            return ranked
        most = max(len(groups[k]) for k in raced)
        raced.sort(key=lambda k: (len(groups[k]) >= most - 1, means[k]), reverse=True)
        in_race = set(raced)
        return raced + [k for k in ranked if k not in in_race]

    # ----------------------------------------------------------------- race
    def race_trials(self) -> int:
        """How many trials at the end of the search race the finalists.

        ``noisy_racing_fraction`` of ``max_trials`` until the noise check
        finds scores that repeat, ``racing_fraction`` of it then (see
        `_race_start_trial` for a space used up before the race).
        """
        calm = self.noise_check is not None and not self.noise_check["noisy"]
        fraction = self.racing_fraction if calm else self.noisy_racing_fraction
        if not fraction or not self.max_trials:
            return 0
        return int(fraction * self.max_trials)

    def _race_start_trial(self) -> Optional[int]:
        """The trial count at which the race begins (None: no race).

        ``max_trials - race_trials()``; or, for a space used up before then
        (every configuration tried), that moment: the race runs its
        `race_trials` there, and the search ends with it.
        """
        n = self.race_trials()
        if not n:
            return None
        if self._exhausted_at is not None:
            return min(self._exhausted_at, self.max_trials - n)
        return self.max_trials - n

    @property
    def _checks_noise(self) -> bool:
        return self.noisy_racing_fraction > self.racing_fraction

    def _check_noise(self, groups: Mapping[str, List[float]]) -> None:
        """Sets `noise_check` once every finalist of the early race has two evaluations.

        Only the finished evaluations count (running ones are still racing).
        Failed evaluations are left out. Scores that do not vary (ties) are
        taken to be noise; with fewer than 3 finalists scored twice (the
        others failed) the race has nothing to tell apart, and the search
        goes on.
        """
        if (self.noise_check is not None or not self._race or not self._checks_noise
                or any(len(groups.get(k, ())) < 2 for k in self._race)):
            return
        pairs = np.array([groups[k][:2] for k in self._race])
        pairs = pairs[np.all(np.isfinite(pairs), axis=1)]
        correlation = None
        if len(pairs) < 3:  # the finalists fail: racing them tells nothing
            noisy = False
        else:
            if np.ptp(pairs[:, 0]) > 0 and np.ptp(pairs[:, 1]) > 0:
                correlation = float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])
            noisy = correlation is None or correlation < self.repeat_correlation
        self.noise_check = {"correlation": correlation, "noisy": noisy,
                            "trial": len(self.trials)}
        if not noisy:  # the race pauses: new configurations until the last race
            self._race, self._race_start = [], None

    @property
    def repeats_configurations(self) -> bool:
        """Whether the search evaluates configurations again (and returns the
        best by its own ranking, not the best single evaluation)."""
        return self.incumbent_evaluations > 1 or self.race_trials() > 0

    def _first_trial_of(self, key: str) -> str:
        return self._first_trials([key])[key]

    def _first_trials(self, keys: List[str]) -> Dict[str, str]:
        """The first ended trial of each configuration (hash) in ``keys``, in one pass."""
        wanted, first = set(keys), {}
        for trial_id in self.end_order:
            key = self._id_to_hash[trial_id]
            if key in wanted and key not in first:
                first[key] = trial_id
                if len(first) == len(wanted):
                    break
        return first

    def _next_race(self) -> Optional[str]:
        """The configuration (hash) the final race evaluates next, or None outside it.

        Trial ``i`` of the race's ``n`` is in round ``i * rounds // n``; round
        ``r`` evaluates the ``ceil(finalists / 2**r)`` finalists with the best
        mean scores so far, the one with the fewest evaluations (running ones
        included) first.
        """
        n, start = self.race_trials(), self._race_start_trial()
        slot = len(self.trials) - start if n else -1
        if slot < 0 or slot >= n:  # (a space used up early: its race is over)
            return None
        groups, means = self._config_fitness(), self._config_means()
        if not self._race or self._race_start != start:
            # A new race (or a resumed search with a larger max_trials: a new end).
            self._race, self._race_start = [], start
            ranked = sorted(
                (k for k in groups if means[k] > -math.inf), key=means.__getitem__, reverse=True
            )
            if len(ranked) < 2:
                return None  # nothing to race yet: search on
            self._race = ranked[: self.finalists]
        self._check_noise(groups)
        if not self._race:  # scores repeat: search on until the final race
            return self._next_race()
        rounds = max(1, math.ceil(math.log2(len(self._race))))
        # Until the noise check has run, every finalist is evaluated again.
        round_ = 0 if self.noise_check is None and self._checks_noise else min(
            rounds - 1, slot * rounds // n)
        alive = sorted(self._race, key=lambda k: means.get(k, -math.inf), reverse=True)
        alive = alive[: math.ceil(len(self._race) / 2**round_)]
        running = collections.Counter(
            self._id_to_hash[t.trial_id] for t in self.ongoing_trials.values()
        )
        return min(
            alive, key=lambda k: (len(groups.get(k, ())) + running[k], -means.get(k, -math.inf))
        )

    def _next_repeat(self) -> Optional[str]:
        """A challenger (hash) to evaluate again before it may become the incumbent.

        The incumbent is the best trusted configuration (evaluated
        ``incumbent_evaluations`` times). The best untrusted one is evaluated
        again while its mean beats the incumbent's (or nothing is trusted yet)
        and it is not yet trusted, counting its running evaluations.
        """
        if self.incumbent_evaluations == 1:
            return None
        groups, means = self._config_fitness(), self._config_means()
        bar = max(
            (means[k] for k in groups if len(groups[k]) >= self.incumbent_evaluations),
            default=-math.inf,
        )
        running = collections.Counter(
            self._id_to_hash[t.trial_id] for t in self.ongoing_trials.values()
        )
        challengers = [
            k
            for k in groups
            if len(groups[k]) + running[k] < self.incumbent_evaluations
            and bar < means[k] < math.inf
        ]
        if not challengers:
            return None
        return max(challengers, key=means.__getitem__)

    def _repeat_values(self, trial_id: str, key: str) -> Config:
        """The values of configuration ``key``, for trial ``trial_id`` to evaluate it again.

        A name the space gained after the configuration first ran (a layer's
        width, registered by a later trial's model outside a conditional scope)
        was never read by its model; it gets its default, not a value keras-tuner
        would draw from Python's global ``random``, and the trial keeps ``key``
        as its hash, so that its score counts for that configuration.
        """
        self._repeat_of[trial_id] = key
        values = self.trial_values(self._first_trial_of(key))  # as it ran, kept as is
        for name, default in self.codec.repair(values).items():
            values.setdefault(name, default)
        return values

    def _best_per_configuration(self) -> list:
        """Completed trials, one per configuration (its best), trusted ones first."""
        best: Dict[str, Any] = {}
        for trial_id in sorted(self.trials):  # ties: the first evaluation
            trial = self.trials[trial_id]
            if trial.status != TrialStatus.COMPLETED:
                continue
            key = self._id_to_hash[trial_id]
            if key not in best or self.fitness(trial) > self.fitness(best[key]):
                best[key] = trial
        ranked = [best[k] for k in self._ranked_configurations() if k in best]
        return ranked + [t for t in self.trials.values() if t.status != TrialStatus.COMPLETED]

    def get_best_trials(self, num_trials: int = 1):
        """The best trials; under a hard budget, completed and within it only.

        With ``incumbent_evaluations > 1``, or once the final race began, one
        trial per configuration, ranked as `_ranked_configurations` says (by
        the configuration's mean score, trusted and raced ones first). With
        several objectives (a list), in NSGA-II's order: by non-dominated
        front, then by crowding distance within it (keras-tuner would rank by
        the plain sum of the objectives, in which the largest scale decides).
        """
        if isinstance(self.objective, MultiObjective) and not self.repeats_configurations:
            return self._pareto_ranked()[:num_trials]
        if self.incumbent_evaluations > 1 or self._race:
            ranked = self._best_per_configuration()
        elif not getattr(self.objective, "hard", False):
            return super().get_best_trials(num_trials)
        else:
            ranked = super().get_best_trials(len(self.trials) or 1)
        if not getattr(self.objective, "hard", False):
            return ranked[:num_trials]
        return [
            t
            for t in ranked
            if t.status == TrialStatus.COMPLETED
            and t.metrics.exists(self.objective.cost)
            and t.metrics.get_last_value(self.objective.cost) <= self.objective.target
        ][:num_trials]

    def _pareto_ranked(self) -> list:
        """Completed trials by non-dominated front, then crowding distance; then the rest.

        Kept until a trial is added, reports metrics or ends (or the trials
        are reloaded):
        keras-tuner's display and the tracker ask for the best trials up to
        three times per trial, and a ranking costs O(n^2) (0.5 s at 3,000 trials).
        """
        trials = self.trials
        key = (len(trials), len(self.end_order))
        cached = getattr(self, "_pareto_cache", None)
        if cached is not None and cached[0] is trials and cached[1] == key:
            return list(cached[2])
        order = self._pareto_order()
        self._pareto_cache = (trials, key, order)
        return list(order)

    def _pareto_order(self) -> list:
        from metanas.tuners.objectives import crowding_distance, non_dominated_ranks

        done = [t for t in sorted(self.trials.values(), key=lambda t: t.trial_id)
                if t.status == TrialStatus.COMPLETED]
        vectors = [self.fitness_vector(t) for t in done]
        scored = [(t, v) for t, v in zip(done, vectors) if -math.inf not in v]
        ranks = non_dominated_ranks([v for _, v in scored]) if scored else []
        fronts: Dict[int, List[int]] = {}
        for i, rank in enumerate(ranks):
            fronts.setdefault(rank, []).append(i)
        order = []
        for front in sorted(fronts):
            members = fronts[front]
            crowding = crowding_distance([scored[i][1] for i in members])
            order += [scored[members[j]][0] for j in sorted(
                range(len(members)), key=lambda j: -crowding[j])]
        chosen = {t.trial_id for t in order}
        return order + [t for t in done if t.trial_id not in chosen] + [
            t for t in self.trials.values() if t.status != TrialStatus.COMPLETED]

    def fitness_vector(self, trial) -> List[float]:
        """One fitness per objective (see `resolve_objectives`), each maximised.

        Each is the trial's best epoch in that objective's own direction
        (`objectives.best_value`: keras-tuner guesses the direction of a list's
        metrics from their names). A failed trial, or one missing a value (none
        logged, or only NaN), is ``-inf`` everywhere.
        """
        from metanas.tuners.objectives import best_value, resolve_objectives

        objectives = resolve_objectives(self.objective)
        if trial.status != TrialStatus.COMPLETED:
            return [-math.inf] * len(objectives)
        vector = []
        for objective in objectives:
            value = best_value(trial, objective)
            if value is None:
                return [-math.inf] * len(objectives)
            vector.append(value if objective.direction == "max" else -value)
        return vector

    def trial_values(self, trial_id: str) -> Config:
        return dict(self.trials[trial_id].hyperparameters.values)

    # ------------------------------------------------------------ proposals
    def is_duplicate(self, values: Config) -> bool:
        """Whether ``values`` was tried: the same values, or the same values of
        every hyperparameter that a completed trial's model read (`note_unused`)."""
        return self.tried_key(values) is not None

    def tried_key(self, values: Config) -> Optional[str]:
        """The hash of the tried configuration that ``values`` stands for (see
        `is_duplicate`), or None if it stands for none."""
        match = self.tried_match(values)
        return None if match is None else match[0]

    def tried_match(self, values: Config) -> Optional[Tuple[str, Optional[FrozenSet[str]]]]:
        """(hash, names its model read) of the tried configuration that ``values``
        stands for, or None: names None where ``values`` is that configuration
        itself, else the values that model read are all ``values`` shares with it."""
        key = self.codec.hash(values)
        if key in self._tried_so_far:
            return key, None
        return self._read_alike(values)

    def _read_alike(self, values: Config) -> Optional[Tuple[str, FrozenSet[str]]]:
        """(hash, names its model read) of a completed trial whose model read
        values that ``values`` holds too, or None: ``values`` builds its model."""
        for read, trials, names in self._read_index():
            if read <= values.keys():
                trial_id = trials.get(tuple(values[k] for k in names))
                if trial_id is not None:
                    return self.codec.hash(self.trial_values(trial_id)), read
        return None

    @synchronized
    def note_unused(self, trial_id: str, names: Sequence[str]) -> None:
        """Records which values of a completed trial its model never read.

        The tuner calls it before `end_trial` (see `metanas.tuners.reads`),
        with an empty list when the model read every value. A configuration
        that agrees with that trial on every value the model read builds the
        same model, so it counts as tried, whatever else it holds (values the
        trial's model never read, or names the space gained since); and each
        evolution mutation changes a value the parent's model read. Names the
        trial does not hold are ignored.
        """
        self._note_unused(trial_id, names, held=None)

    def _note_unused(self, trial_id: str, names: Sequence[str], held: Optional[set]) -> None:
        """`note_unused`, with ``held`` the names the trial's run held (a worker's
        trial, not yet copied into the chief's); by default the chief's copy's."""
        if isinstance(names, (str, bytes)) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"names must be a list of hyperparameter names, got {names!r}.")
        trial = self.trials.get(trial_id)
        if trial is None:
            raise ValueError(f"trial_id {trial_id!r} is not a trial of this search.")
        if held is None:
            held = set(trial.hyperparameters.values)
        self._unused[trial_id] = sorted(set(names) & held)
        self._noted_names[trial_id] = held
        if trial_id in self.end_order:  # noted late: not indexed as it ended
            self._read_keys = None

    def unused_names(self, trial_id: str) -> frozenset:
        """Values of trial ``trial_id`` that its model did not read (`note_unused`)."""
        return frozenset(self._unused.get(trial_id, ()))

    def _read_index(self):
        """(names a completed trial's model read, as a set; {their values: the
        first such trial's id}; the names, sorted), one per set of names. Built
        once, then added to as trials end (`_record_values`)."""
        if self._read_keys is None:
            self._read_keys = {}
            for trial_id in self._unused:
                self._index_reads(trial_id)
        return self._read_keys.values()

    def _index_reads(self, trial_id: str) -> None:
        trial = self.trials[trial_id]
        if trial.status != TrialStatus.COMPLETED:  # e.g. INVALID: a NaN score
            return
        values, unused = trial.hyperparameters.values, self._unused[trial_id]
        space = {hp.name for hp in self.hyperparameters.space}
        names = tuple(sorted(k for k in values if k in space and k not in unused))
        trials = self._read_keys.setdefault(names, (frozenset(names), {}, names))[1]
        trials.setdefault(tuple(values[k] for k in names), trial_id)

    def random_unique(self) -> Optional[Config]:
        """A random configuration not tried yet, or None if the space is exhausted.

        Draws from the prior first; after repeated collisions, enumerates the
        space's finite branches and picks uniformly among the configurations
        left, so a small space is used up exactly, without duplicates. A branch
        that reaches a continuous decision is never used up: it is one more
        candidate, completed by a draw of its remaining decisions.
        """
        for _ in range(_MAX_COLLISIONS):
            values = self.codec.sample(self._rng)
            if not self.is_duplicate(values):
                return values
        unseen, infinite, listed = [], False, 0
        for values, complete in self.codec.branches(limit=_ENUMERATE_LIMIT):
            listed += 1
            infinite = infinite or not complete
            if not complete or self.codec.hash(values) not in self._tried_so_far:
                unseen.append((values, complete))
        if not infinite and not unseen and listed < _ENUMERATE_LIMIT:
            return None
        # Uniform among those that build an untried model: draw, and drop the
        # configurations a completed trial's model read alike (`note_unused`).
        while unseen:
            index = int(self._rng.integers(len(unseen)))
            values, complete = unseen[index]
            if complete and self._read_alike(values) is None:
                return values
            if not complete:
                for _ in range(_MAX_COLLISIONS):
                    drawn = self.codec.repair(values, self._rng)
                    if not self.is_duplicate(drawn):
                        return drawn
            unseen[index] = unseen[-1]
            unseen.pop()
        if listed >= _ENUMERATE_LIMIT:
            # The listing stopped at its limit, so the space is not known to be
            # used up: values no model reads can fill the whole listing (a
            # search stopped with models untried). Many more draws first.
            for _ in range(_CUT_LISTING_DRAWS):
                values = self.codec.sample(self._rng)
                if not self.is_duplicate(values):
                    return values
        return None

    def _next_initial(self) -> Optional[Config]:
        while self._initial_cursor < len(self.initial_hps):
            wanted = self.initial_hps[self._initial_cursor]
            self._initial_cursor += 1
            values = self.codec.repair(wanted, self._rng)
            if not self.is_duplicate(values):
                # Names the space does not hold yet (a branch's settings, which
                # the model registers when it builds that branch) are passed on
                # as keras-tuner does: the model reads them when it registers them.
                known = {hp.name for hp in self.hyperparameters.space}
                values.update({k: v for k, v in wanted.items() if k not in known})
                return values
        return None

    def propose(self, trial_id: str) -> Optional[Config]:
        """The next configuration to try, or None to end the search.

        Called once per new trial, after ``initial_hps`` are used up.
        """
        raise NotImplementedError

    def populate_space(self, trial_id: str) -> Dict[str, Any]:
        values = self._next_initial()
        if values is None:
            again = self._next_race() or self._next_repeat()
            if again is not None:
                values = self._repeat_values(trial_id, again)
        if values is None:
            values = self.propose(trial_id)
        if (values is None and self._exhausted_at is None and self.race_trials()
                and len(self.trials) < self.max_trials and not self.ongoing_trials):
            # (Not while trials run: as they end, the model may register more
            # hyperparameters, and the space grow. Another worker waits: IDLE.)
            # Every configuration tried before the race: race now (then stop),
            # rather than return the luckiest single score.
            self._exhausted_at = len(self.trials)
            again = self._next_race()
            if again is not None:
                values = self._repeat_values(trial_id, again)
        if values is None:
            if not self.ongoing_trials and not self._retry_queue:
                self._ran_out = self._ran_out_mark()
            return {"status": TrialStatus.STOPPED, "values": None}
        return {"status": TrialStatus.RUNNING, "values": values}

    # ------------------------------------------------------ workers, liveness
    @synchronized
    def create_trial(self, tuner_id: str):
        self._tuner_seen[tuner_id] = time.monotonic()
        self.reclaim_lost_trials()
        # A trial whose result arrived while it waited for a retry is done.
        self._retry_queue = [t for t in self._retry_queue if t not in self.end_order]
        ongoing = self.ongoing_trials.get(tuner_id)
        if ongoing is not None and ongoing.trial_id in self.end_order:
            # It ended, and saving that failed (a full disk) before keras-tuner let
            # it go: `search` called again must not run it again (and lose that).
            del self.ongoing_trials[tuner_id]
            self._learn_pending()
        if self.failure is not None:
            self.tuner_ids.discard(tuner_id)
            return trial_module.Trial(self.get_space(), status=TrialStatus.STOPPED)
        ran_out = self._ran_out
        trial = super().create_trial(tuner_id)
        if self._ran_out != ran_out:  # (keras-tuner saves only a RUNNING trial)
            self.save()
        if trial.status == TrialStatus.RUNNING and dist_utils.is_chief_oracle():
            # Handing it out to a worker counts as its first heartbeat: one that
            # dies before it beats (in `on_trial_begin`) loses the trial all the same.
            self._heartbeats[trial.trial_id] = time.monotonic()
        if trial.status == TrialStatus.STOPPED and any(
            ongoing.trial_id in self._heartbeats
            for other, ongoing in self.ongoing_trials.items()
            if other != tuner_id
        ):
            # Another worker's trial may still be lost and need this worker:
            # wait (IDLE) rather than leave the chief with no one to re-run it.
            self.tuner_ids.add(tuner_id)
            trial = trial_module.Trial(self.get_space(), status=TrialStatus.IDLE)
        return trial

    @synchronized
    def update_trial(self, trial_id: str, metrics, step: int = 0):
        from metanas.tuners.objectives import with_computed_values

        # A trial's logged metrics hold no value of a computed objective.
        metrics = with_computed_values(self.objective, metrics)
        if trial_id in self.end_order:  # a late re-run of an ended trial changed it
            self._pareto_cache = None
        return super().update_trial(trial_id, metrics, step=step)

    @synchronized
    def get_trial(self, trial_id: str):
        """Returns the trial; a worker's call is also its trial's heartbeat."""
        if any(t.trial_id == trial_id for t in self.ongoing_trials.values()):
            self._heartbeats[trial_id] = time.monotonic()
        return super().get_trial(trial_id)

    @synchronized
    def reclaim_lost_trials(self) -> List[str]:
        """Hands out again (or fails) running trials whose heartbeats stopped.

        Returns the ids of the trials reclaimed.
        """
        if self.heartbeat_timeout is None:
            return []
        now = time.monotonic()
        lost = []
        for tuner_id, trial in list(self.ongoing_trials.items()):
            beat = self._heartbeats.get(trial.trial_id)
            if beat is None or now - beat <= self.heartbeat_timeout:
                continue
            lost.append(trial.trial_id)
            del self.ongoing_trials[tuner_id]
            self.tuner_ids.discard(tuner_id)
            self._heartbeats.pop(trial.trial_id, None)
            self._lost_runs[trial.trial_id] += 1
            if self._lost_runs[trial.trial_id] <= self.max_lost_retries:
                print(
                    f"Trial {trial.trial_id} lost its worker {tuner_id} (no heartbeat "
                    f"for {self.heartbeat_timeout:g} s); it goes to the next worker."
                )
                self._retry_queue.append(trial.trial_id)
            else:
                trial.status = TrialStatus.FAILED
                trial.message = (
                    f"lost its worker {self._lost_runs[trial.trial_id]} times "
                    f"(max_lost_retries={self.max_lost_retries})"
                )
                self.end_order.append(trial.trial_id)
                self._save_trial(trial)
                self._learn_pending()
        if lost:
            self.save()
        return lost

    @synchronized
    def live_tuner_ids(self) -> List[str]:
        """Workers that may still ask for a trial: not told to stop, not silent."""
        busy = set(self.ongoing_trials)
        now = time.monotonic()
        timeout = math.inf if self.heartbeat_timeout is None else self.heartbeat_timeout
        return sorted(
            t
            for t in self.tuner_ids
            if t in busy or now - self._tuner_seen.get(t, now) <= timeout
        )

    def _ran_out_mark(self) -> List[Optional[int]]:
        return [len(self.trials), self.max_trials, self.race_trials()]

    @synchronized
    def search_finished(self) -> bool:
        """Whether a search has nothing left to run (a finished search resumed
        as it was): ``max_trials`` trials made and ended; or its strategy had
        nothing left to propose, with every trial ended, and neither trials,
        ``max_trials`` nor the race's length changed since; or too many failures.

        The space is taken as last seen: a model changed to register more
        hyperparameters does not reopen a search that ran out (raise
        ``max_trials`` for that).
        """
        if self.failure is not None:
            return True
        if self.ongoing_trials or self._retry_queue or not set(self.trials) <= set(self.end_order):
            return False
        return bool(self.max_trials and len(self.trials) >= self.max_trials
                    or self._ran_out == self._ran_out_mark())

    # -------------------------------------------------------------- results
    @synchronized
    def end_trial(self, trial) -> None:
        if trial.trial_id in self.end_order:
            # A second result for a trial that already ended for good (its
            # worker was presumed lost but finished): keep the first one.
            for tuner_id, ongoing in list(self.ongoing_trials.items()):
                if ongoing.trial_id == trial.trial_id:
                    del self.ongoing_trials[tuner_id]
            if dist_utils.is_chief_oracle():  # what that worker left is not needed
                distributed.take_unused(self._get_trial_dir(trial.trial_id))
            return
        if trial.trial_id in self._retry_queue:
            self._retry_queue.remove(trial.trial_id)
        if (trial.status in (TrialStatus.FAILED, TrialStatus.INVALID) and not trial.message
                and dist_utils.is_chief_oracle()):
            # gRPC carried no message; the worker left it in the trial's directory.
            trial.message = distributed.take_failure_message(self._get_trial_dir(trial.trial_id))
        if (trial.status == TrialStatus.COMPLETED and dist_utils.is_chief_oracle()
                and trial.trial_id in self.trials):
            unused = distributed.take_unused(self._get_trial_dir(trial.trial_id))
            if unused is not None:  # held: the worker's values, not yet copied here
                self._note_unused(trial.trial_id, unused,
                                  held=set(trial.hyperparameters.values))
        try:
            super().end_trial(trial)
        except RuntimeError as error:
            if trial.trial_id not in self.end_order or not str(error).startswith(
                "Number of consecutive failures"
            ):
                raise
            # Too many consecutive failures. keras-tuner raised before it saved
            # anything, so that a resumed search runs the trial again (a saved
            # failure would trip the limit again at once). Keep that, but let its
            # worker go, so that the chief of a distributed search can stop its
            # workers and end (with this error).
            self._heartbeats.pop(trial.trial_id, None)
            if dist_utils.is_chief_oracle():
                self.failure = str(error)
            self.end_order.remove(trial.trial_id)
            self._retry_queue.append(trial.trial_id)
            for tuner_id, ongoing in list(self.ongoing_trials.items()):
                if ongoing.trial_id == trial.trial_id:
                    del self.ongoing_trials[tuner_id]
                    self.tuner_ids.discard(tuner_id)  # it gets the error, and ends
            self.save()
            raise
        self._heartbeats.pop(trial.trial_id, None)
        # keras-tuner appends to `end_order` only when a trial ends for good; a
        # trial sent for retry ends again later, and is learnt from only then.
        # An earlier trial whose end failed to save (a full disk) comes first.
        self._learn_pending()

    def _learn_pending(self) -> None:
        """Learns, in order, from the trials that ended since the strategy last did."""
        for trial_id in self.end_order[self._learned:]:
            self._learn_from(self.trials[trial_id])

    def _learn_from(self, trial) -> None:
        """`on_trial_result`, then saves: what the strategy learnt is kept at once."""
        self.on_trial_result(trial)
        # Up to this trial: if a save fails here, the later ones are still to learn.
        self._learned = max(self._learned, self.end_order.index(trial.trial_id) + 1)
        self.save()

    def _ensure_active(self, hyperparameters) -> None:
        """keras-tuner's ``ensure_active_values``, by name, from the oracle's random source.

        Fills the active hyperparameters that have no value and drops the
        inactive ones. keras-tuner drops a name when any hyperparameter of that
        name is inactive, so of a name declared in two conditional scopes (which
        it allows) a trial lost the value it was proposed, refilled from the
        global `random`. Here a name is kept while one of its hyperparameters
        is active.
        """
        values, space = hyperparameters.values, hyperparameters.space
        counts = collections.Counter(hp.name for hp in space)
        for hp in space:
            if hyperparameters.is_active(hp):
                if hp.name not in values:
                    values[hp.name] = self.codec.sample_value(hp, self._rng)
            elif counts[hp.name] == 1 or not any(
                    other is not hp and other.name == hp.name
                    and hyperparameters.is_active(other) for other in space):
                values.pop(hp.name, None)

    def _record_values(self, trial) -> None:
        key = self._repeat_of.get(trial.trial_id)
        self._ensure_active(trial.hyperparameters)
        if key is None:  # keras-tuner's, after `_ensure_active`
            new = self._compute_values_hash(trial.hyperparameters.values)
            self._tried_so_far.add(new)
            old = self._id_to_hash[trial.trial_id]
            if old != new:  # the space gained hyperparameters since the proposal
                self._id_to_hash[trial.trial_id] = new
                self._tried_so_far.discard(old)
        else:  # an evaluation again: the configuration's hash, whatever the space gained
            self._id_to_hash[trial.trial_id] = key
        # With tune_new_entries=False, training adds entries the space does not
        # tune (at their defaults); keras-tuner re-hashes the trial with them,
        # which a proposal (without them) never matches. Keep the hash of the
        # values the space decides as well, so that no configuration repeats.
        names = {hp.name for hp in self.hyperparameters.space}
        decided = {k: v for k, v in trial.hyperparameters.values.items() if k in names}
        self._tried_so_far.add(self.codec.hash(decided))
        held = self._noted_names.pop(trial.trial_id, None)
        if held is None or trial.trial_id not in self._unused:
            return
        if trial.status != TrialStatus.COMPLETED:
            # keras-tuner made it INVALID (a NaN score): it tried no model.
            del self._unused[trial.trial_id]
            self._read_keys = None  # in case the index took it in as it was noted
            return
        # Values keras-tuner filled in since the note: no model read them.
        added = set(trial.hyperparameters.values) - held
        self._unused[trial.trial_id] = sorted({*self._unused[trial.trial_id], *added})
        if self._read_keys is not None:
            self._index_reads(trial.trial_id)

    def _check_consecutive_failures(self) -> None:
        # A model over the tuner's ``max_model_size`` is rejected before any
        # training: it says nothing about whether training works, so it fails
        # its trial without counting toward ``max_consecutive_failed_trials``.
        consecutive = 0
        for trial_id in self.end_order:
            trial = self.trials[trial_id]
            if trial.status != TrialStatus.FAILED:
                consecutive = 0
                continue
            if is_oversized(trial):
                continue
            consecutive += 1
            if consecutive == self.max_consecutive_failed_trials:
                raise RuntimeError(
                    "Number of consecutive failures exceeded the limit "
                    f"of {self.max_consecutive_failed_trials}.\n" + (trial.message or "")
                )

    def on_trial_result(self, trial) -> None:
        """Hook: a trial ended for good (COMPLETED, or FAILED with -inf fitness)."""

    def strategy_diagnostics(self) -> Dict[str, float]:
        """Numbers that describe the strategy's state, for trackers and logs.

        Once the noise check has run (``noisy_racing_fraction``):
        ``race/noisy`` (1 or 0) and ``race/repeat_correlation``.
        """
        check = self.noise_check
        if check is None:
            return {}
        out = {"race/noisy": float(check["noisy"])}
        if check["correlation"] is not None:
            out["race/repeat_correlation"] = float(check["correlation"])
        return out

    # ---------------------------------------------------------------- state
    def get_state(self) -> Dict[str, Any]:
        state = super().get_state()
        state.update(
            {
                "rng": self._rng.bit_generator.state,
                "initial_cursor": self._initial_cursor,
                # What the cursor counts through (a meta-tuner's transferred
                # elite is chosen once, not again on resume).
                "initial_hps": copy.deepcopy(self.initial_hps),
                "lost_runs": dict(self._lost_runs),
                "race": list(self._race),
                "race_start": self._race_start,
                "exhausted_at": self._exhausted_at,
                "ran_out": self._ran_out,
                "noise_check": self.noise_check,
                "repeat_of": dict(self._repeat_of),
                "learned": self._learned,
                "unused": {k: list(v) for k, v in self._unused.items()},
                "objective": _objective_state(self.objective),
                "oracle_class": type(self).__name__,
                "settings": self.strategy_values(),
            }
        )
        return state

    def strategy_values(self) -> Dict[str, Any]:
        """The strategy's settings as this oracle uses them (JSON values).

        Every keyword-only setting of its class (`keyword_settings`) but
        keras-tuner's and those a resumed search may change freely
        (`SETTINGS_FREE_ON_RESUME`); a setting given as an object (a
        `Selection`) by its class's name.
        """
        values: Dict[str, Any] = {}
        for name, _ in keyword_settings(type(self)):
            if name in SETTINGS_FREE_ON_RESUME or not hasattr(self, name):
                continue
            value = getattr(self, name)
            if isinstance(value, np.generic):
                value = value.item()
            if not (value is None or isinstance(value, (bool, int, float, str))):
                value = type(value).__name__
            values[name] = value
        return values

    def _check_settings(self, state: Dict[str, Any]) -> None:
        """Warns when a search is resumed with other strategy settings than it
        was saved with: the new ones apply from here on, which keras-tuner's
        tuners do without a word."""
        saved = state.get("settings") if isinstance(state, dict) else None
        if not isinstance(saved, dict):  # (saved before they were recorded)
            return
        now = self.strategy_values()
        changed = [f"{name} {saved[name]!r} -> {now[name]!r}" for name in sorted(now)
                   if name in saved and saved[name] != now[name]]
        if changed:
            warnings.warn(
                f"The search {self._get_oracle_fname()} is resumed with other settings than "
                f"it ran with: {', '.join(changed)}. The new ones apply from here on; give the "
                "earlier ones to go on as before.", ResumedSettingsWarning, stacklevel=2)

    def save(self) -> None:
        """Saves the oracle's state; a crash mid-write leaves the previous file."""
        save_json_atomically(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial) -> None:
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        save_json_atomically(path, trial.get_state())

    def reload(self) -> None:
        """Reloads a saved search; a corrupt state file is an error, never replaced."""
        fname = self._get_oracle_fname()
        self._pareto_cache = None  # keras-tuner refills self.trials in place
        self._reloading = True
        try:
            super().reload()
        except SavedStateError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RuntimeError) as error:
            # (A JSONDecodeError and a UnicodeDecodeError are ValueErrors; keras-tuner
            # raises a RuntimeError from a KeyError for a state that lacks a key.)
            if isinstance(error, RuntimeError) and not isinstance(error.__cause__, KeyError):
                raise
            bad, reason = _unreadable_files(sorted(kt_io.glob(os.path.join(
                self._project_dir, "trial_*", "trial.json"))), fname)
            if bad is None:  # readable all: the oracle's state says what it lacks
                bad, reason = fname, (error.__cause__ if isinstance(error, RuntimeError)
                                      else error)
            raise SavedStateError.corrupt("oracle state" if bad == fname else "trial",
                                          bad, reason) from error
        finally:
            self._reloading = False
        # A trial file written just before a kill, by a `create_trial` that never
        # saved the oracle: no one will run it, and it must not count toward
        # `max_trials`. Its number (and directory) goes to the next trial.
        for trial_id in [t for t in self.trials if t not in self.start_order]:
            if self.trials[trial_id].status in (TrialStatus.RUNNING, TrialStatus.IDLE):
                del self.trials[trial_id]
        # A trial whose end reached its own file but not the oracle's (a kill or
        # a full disk between keras-tuner's two writes): keras-tuner sends it
        # back to run again, which would overwrite its result. It ended.
        for trial_id in list(self._retry_queue):
            if self.trials[trial_id].status in (TrialStatus.COMPLETED, TrialStatus.FAILED):
                self._retry_queue.remove(trial_id)
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
        # A restarted chief: keras-tuner hands every running trial out again at
        # once, while the workers that run it may be alive, still training (they
        # wait for the chief) — two trainings, and the later one's checkpoint
        # beside the first one's score. They stay theirs, as if they had just
        # beaten; a worker that is gone loses its trial after heartbeat_timeout.
        if dist_utils.is_chief_oracle() and self.heartbeat_timeout is not None:
            now = time.monotonic()
            for tuner_id, trial in getattr(self, "_reloaded_ongoing", {}).items():
                if (trial.trial_id in self._retry_queue
                        and self.trials[trial.trial_id].status == TrialStatus.RUNNING):
                    self._retry_queue.remove(trial.trial_id)
                    self.ongoing_trials[tuner_id] = self.trials[trial.trial_id]
                    self._heartbeats[trial.trial_id] = now
        self._reloaded_ongoing = {}
        # Trials that ended for good while the strategy had not yet learnt
        # from them (a kill between keras-tuner's save and `on_trial_result`).
        self._learn_pending()

    def _check_objective(self, state: Dict[str, Any]) -> None:
        """Fails a reload by a tuner with another strategy or objective than the saved
        search's.

        Its trials keep the scores of the objective they were run for: ranked by
        another one, the best trial would be chosen on the wrong metric. Another
        strategy's state is no corrupt file, and is not called one.
        """
        if not isinstance(state, dict):
            return  # (`set_state` says what is wrong with it)
        if "rng" not in state and "oracle_class" not in state and KT_ORACLE_KEYS <= set(state):
            # keras-tuner's own oracle saved it (a project switched to metanas):
            # no corrupt file.
            raise SavedStateError(
                f"The saved search {self._get_oracle_fname()} was run by a keras-tuner "
                f"oracle, not a metanas one: {type(self).__name__} cannot resume it. Start a "
                "new search with overwrite=True (which deletes it) or another project_name; "
                "its files were left as they are.")
        saved_class = state.get("oracle_class")  # (None: saved before it was recorded)
        if saved_class is not None and saved_class != type(self).__name__:
            raise SavedStateError(
                f"The saved search {self._get_oracle_fname()} was run by {saved_class}; this "
                f"tuner's oracle is {type(self).__name__}. Resume it with the same strategy, "
                "or start a new search with overwrite=True or another project_name."
            )
        saved = state.get("objective")
        if saved is None:  # a state saved before metanas recorded it
            return
        now = _objective_state(self.objective)
        if saved != now:
            raise SavedStateError(
                f"The saved search {self._get_oracle_fname()} was scored by objective "
                f"{_describe_objective(saved)}; this tuner's is {_describe_objective(now)}. "
                "Its trials keep their scores: resume it with the same objective, or start "
                "a new search with overwrite=True or another project_name."
            )

    def _check_trial_files(self, state: Dict[str, Any]) -> None:
        """Fails a reload whose saved state names trials with no file (loaded by now)."""
        try:
            named = [*state.get("start_order", []), *state.get("end_order", []),
                     *state.get("retry_queue", []), *state.get("ongoing_trials", {}).values()]
        except (AttributeError, TypeError):  # malformed: `set_state` says how
            return
        missing = sorted({str(t) for t in named if t is not None} - set(self.trials))
        if missing:
            paths = [os.path.join(self._project_dir, f"trial_{t}", "trial.json")
                     for t in missing[:3]]
            raise SavedStateError(
                f"The saved search {self._get_oracle_fname()} names {len(missing)} "
                f"trial(s) whose file is gone ({', '.join(paths)}"
                f"{', ...' if len(missing) > 3 else ''}): the project directory was "
                "deleted or changed under the search. Restore those files, or start a new "
                "search with overwrite=True or another project_name."
            )

    def set_state(self, state: Dict[str, Any]) -> None:
        if getattr(self, "_reloading", False):
            self._check_trial_files(state)
            self._check_objective(state)
            self._check_settings(state)
        super().set_state(state)
        # keras-tuner's reload then sends every one of them to run again (`reload`).
        self._reloaded_ongoing = dict(self.ongoing_trials)
        try:
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
            self._rng = rng
            self._initial_cursor = int(state["initial_cursor"])
            initial = state.get("initial_hps")  # absent from states saved before it
            if initial is not None:
                if not isinstance(initial, list) or not all(isinstance(v, dict) for v in initial):
                    raise ValueError(f"'initial_hps': expected a list of {{name: value}}, "
                                     f"got {initial!r}")
                self.initial_hps = copy.deepcopy(initial)
            self._lost_runs = collections.defaultdict(int)
            self._lost_runs.update(
                {str(k): int(v) for k, v in state.get("lost_runs", {}).items()}
            )
            race = state.get("race", [])
            if not isinstance(race, list) or not all(isinstance(k, str) for k in race):
                raise ValueError(f"'race': expected a list of configuration hashes, got {race!r}")
            self._race = list(race)
            check = state.get("noise_check")
            if check is not None and not (
                    isinstance(check, dict) and isinstance(check.get("noisy"), bool)
                    and (check.get("correlation") is None
                         or isinstance(check["correlation"], (int, float)))):
                raise ValueError(
                    f"'noise_check': expected None or {{'correlation', 'noisy'}}, got {check!r}")
            self.noise_check = None if check is None else dict(check)
            start = state.get("race_start")
            self._race_start = None if start is None else int(start)
            exhausted = state.get("exhausted_at")
            self._exhausted_at = None if exhausted is None else int(exhausted)
            ran_out = state.get("ran_out")
            if ran_out is not None and not (
                    isinstance(ran_out, list) and len(ran_out) == 3
                    and all(isinstance(v, int) or v is None for v in ran_out)):
                raise ValueError(f"'ran_out': expected None or [trial count, max_trials, "
                                 f"race trials], got {ran_out!r}")
            self._ran_out = ran_out
            if self._race_start != self._race_start_trial() and not (
                    self.racing_fraction or self.noisy_racing_fraction):
                # Racing turned off on resume: its finalists rank first no more. (Not
                # a max_trials too small for a race of its own, 1 to 3, nor none: an
                # oracle reopened to load the best model keeps the answer, and trials
                # run after it, evaluated once, rank after the raced ones.)
                # (A race planned for another max_trials keeps them first until
                # the next race begins: a search reopened with another budget,
                # or only to load its best model, keeps its answer.)
                self._race, self._race_start = [], None
            self._learned = int(state.get("learned", len(self.end_order)))
            repeat_of = state.get("repeat_of", {})
            if not isinstance(repeat_of, dict) or not all(
                    isinstance(v, str) for v in repeat_of.values()):
                raise ValueError(f"'repeat_of': expected trial ids to hashes, got {repeat_of!r}")
            self._repeat_of = {str(k): v for k, v in repeat_of.items()}
            unused = state.get("unused", {})
            if not isinstance(unused, dict) or not all(
                    str(k) in self.trials and isinstance(v, list)
                    and all(isinstance(n, str) for n in v) for k, v in unused.items()):
                raise ValueError(
                    f"'unused': expected known trial ids to lists of names, got {unused!r}")
            self._unused = {str(k): list(v) for k, v in unused.items()}
            self._read_keys = None
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{type(self).__name__} state is missing or has a bad value for "
                f"{error}; expected the state written by {type(self).__name__}."
            ) from error
