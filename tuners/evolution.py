"""Steady-state evolution, with roulette or tournament selection and aging."""

from __future__ import annotations

import itertools
import json
import math
import warnings
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from metanas.tuners.base import (
    MetanasOracle,
    Setting,
    ShortSearchWarning,
    check_int,
    check_rate,
)
from metanas.tuners.codec import Config
from metanas.tuners.objectives import resolve_objectives
from metanas.tuners.selection import (
    NSGA2Selection,
    RouletteSelection,
    Selection,
    TournamentSelection,
)
from metanas.tuners.surrogate import ParzenRatio

__all__ = ["EvolutionOracle"]

#: Times a child that collides with a tried configuration is mutated again
#: before the oracle falls back to a random unseen configuration.
_MAX_CHILD_RETRIES = 20
DEFAULT_TOURNAMENT_SIZE = 3
#: The models `surrogate` may name (None: children are not ranked).
SURROGATES = ("tpe", None)
_MAX_CANDIDATES = 1024
#: Tokens of a surrogate column at most (a wider ``Choice`` is bucketed by index).
_SURROGATE_MAX_TOKENS = 64


def make_selection(selection: Union[str, Selection], tournament_size: int) -> Selection:
    """The `Selection` object for a ``selection`` setting."""
    if isinstance(selection, Selection):
        return selection
    if selection == "tournament":
        return TournamentSelection(size=tournament_size)
    if selection == "roulette":
        return RouletteSelection()
    if selection == "nsga2":
        return NSGA2Selection()
    raise ValueError(
        f"selection must be 'tournament', 'roulette', 'nsga2' or a Selection object, "
        f"got {selection!r}."
    )


class EvolutionOracle(MetanasOracle):
    """Steady-state evolution of keras-tuner configurations.

    The first ``population_size`` trials are ``initial_hps`` and then random
    configurations. From then on every new trial is a child: a parent is
    chosen by ``selection`` among the current population (trials that have
    finished); with probability ``crossover_rate`` a second parent is chosen and
    the two are recombined by uniform crossover; then each active decision
    mutates with probability ``mutation_rate``, and at least one always does
    unless crossover already made a new configuration. A child that repeats a
    tried configuration is mutated again, then replaced by a random unseen one,
    so no child repeats a configuration while unseen ones remain (only the
    final race, below, evaluates configurations again, on purpose). By
    default ``surrogate_candidates=8`` such children are bred, each of its own
    parents, and a model of the scores so far picks which one is trained
    (``surrogate``, below).

    The population is updated as each trial ends, so any number of workers can
    ask for trials while others run (steady-state, asynchronous evolution).
    When it grows past ``population_size``, one member leaves: with
    ``aging=True`` the oldest (regularized evolution, Real et al.,
    "Regularized Evolution for Image Classifier Architecture Search",
    AAAI 2019), otherwise the worst (ties: the oldest). A failed trial (an
    exception at build, a NaN loss) joins with fitness ``-inf``: it is never
    preferred, and it never stops the search.

    Args:
        objective, max_trials, seed, hyperparameters, initial_hps, and the
            remaining keras-tuner settings: see `MetanasOracle`.
        population_size: Members kept, at least 2.
        selection: ``"tournament"``, ``"roulette"`` (rank-based
            fitness-proportional; see `RouletteSelection`), ``"nsga2"``
            (Pareto search over several objectives; see `NSGA2Selection`) or
            a `Selection`.
        tournament_size: Members per tournament with
            ``selection="tournament"``, from 1 to ``population_size``; by
            default 3, or the population size if smaller.
        mutation_rate: Probability that each active decision of a child
            mutates, in [0, 1].
        crossover_rate: Probability that a child has two parents, in [0, 1].
        aging: Remove the oldest member (True) or the worst (False).
        surrogate: ``"tpe"``: each child is the most promising of
            ``surrogate_candidates`` children, each bred of its own parents, as
            ranked by the Tree-structured Parzen Estimator's density ratio
            (Bergstra et al., "Algorithms for Hyper-Parameter Optimization",
            NeurIPS 2011) fitted on every configuration evaluated so far (see
            `metanas.tuners.surrogate.ParzenRatio`); None: the first child is
            taken. Not used by NSGA-II (``selection="nsga2"``); with a list
            of objectives and another rule it ranks by the one score
            keras-tuner gives each trial, as that rule does.
        surrogate_candidates: Children ranked per trial, from 1 (none
            ranked) to 1024.
        surrogate_min_trials: Configurations evaluated before the surrogate
            ranks children, at least 2; by default ``population_size``.

    With ``incumbent_evaluations > 1`` or a race (see `MetanasOracle`) a
    member's fitness is the mean score of its configuration's evaluations,
    and an evaluation of a configuration already in the population updates
    that member instead of adding one.

    Ranking candidate children by a model of the scores seen so far, as
    predictor-guided evolution does (BANANAS, White et al., AAAI 2021, ranks
    mutations by a neural predictor), spends each trial where good
    configurations were found. The model draws no random numbers, so a seed
    still gives one search. It costs about 1-2 ms per proposal on the
    benchmark's spaces (5-9 decisions), and 4.5 ms after 200 trials to 9 ms
    after 5,000 with 20 decisions (its fit grows with the configurations
    evaluated; each is encoded once); ``surrogate=None``: under 0.5 ms.

    With one objective, the last 30% of ``max_trials`` race the 8 best
    configurations (``racing_fraction=0.3, finalists=8``; see `MetanasOracle`):
    with noisy scores the search returns the race's winner, not its luckiest
    single evaluation. Set ``racing_fraction=0`` to spend every trial on new
    configurations.

    The defaults (population 10, tournament 3, mutation 0.1, crossover 0.5,
    replace-worst, TPE-ranked children of 8 candidates, a race of 30% over 8
    finalists) were chosen on the
    benchmark's tuning tasks only (benchmarks/tune_evolution.py; see
    benchmarks/RESULTS.md).

    Example:

        >>> oracle = EvolutionOracle(
        ...     objective="val_accuracy", max_trials=50, seed=7,
        ...     population_size=10, selection="tournament", tournament_size=3)
    """

    #: Tuned on the benchmark's tuning tasks (benchmarks/tune_evolution_race, and
    #: with the surrogate benchmarks/tune_evolution_surrogate_race).
    default_racing_fraction = 0.3
    default_finalists = 8
    #: No noise check by default (measured: benchmarks/noise_check.md).
    default_noisy_racing_fraction = 0.3

    def __init__(
        self,
        objective=None,
        max_trials: Optional[int] = None,
        *,
        seed: Optional[int] = None,
        hyperparameters=None,
        population_size: int = 10,
        selection: Union[str, Selection] = "tournament",
        tournament_size: Optional[int] = None,
        mutation_rate: float = 0.1,
        crossover_rate: float = 0.5,
        aging: bool = False,
        surrogate: Optional[str] = "tpe",
        surrogate_candidates: int = 8,
        surrogate_min_trials: Optional[int] = None,
        initial_hps=None,
        **kwargs: Any,
    ) -> None:
        self.population_size = check_int("population_size", population_size, low=2)
        if isinstance(selection, TournamentSelection):  # its size is the tournament's
            if tournament_size is not None and tournament_size != selection.size:
                raise ValueError(
                    f"tournament_size={tournament_size!r} disagrees with the selection's "
                    f"size {selection.size}; give the size once.")
            tournament_size = selection.size
        elif tournament_size is not None and not (
                isinstance(selection, str) and selection == "tournament"):
            shown = repr(selection) if isinstance(selection, str) else (
                f"{type(selection).__name__}()")
            warnings.warn(f"tournament_size={tournament_size!r} is not used by "
                          f"selection={shown}; only tournament selection holds "
                          "tournaments.", UserWarning, stacklevel=2)
        if tournament_size is None:
            tournament_size = min(DEFAULT_TOURNAMENT_SIZE, self.population_size)
        self.tournament_size = check_int(
            "tournament_size", tournament_size, low=1, high=self.population_size
        )
        self.selection = make_selection(selection, self.tournament_size)
        self.selection.validate(self.population_size)
        self.mutation_rate = check_rate("mutation_rate", mutation_rate)
        self.crossover_rate = check_rate("crossover_rate", crossover_rate)
        if not isinstance(aging, (bool, np.bool_)):
            raise ValueError(f"aging must be True or False, got {aging!r}.")
        aging = bool(aging)  # (numpy's, from a table of settings, saved as JSON)
        self.aging = aging
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {surrogate!r}.")
        self.surrogate = surrogate
        self.surrogate_candidates = check_int(
            "surrogate_candidates", surrogate_candidates, low=1, high=_MAX_CANDIDATES)
        if surrogate_min_trials is None:
            surrogate_min_trials = self.population_size
        self.surrogate_min_trials = check_int(
            "surrogate_min_trials", surrogate_min_trials, low=2)
        # The surrogate's token rows: (the groups they follow, rows, their keys).
        self._surrogate_rows: Optional[Tuple[Dict, np.ndarray, List[str]]] = None
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            seed=seed,
            hyperparameters=hyperparameters,
            initial_hps=initial_hps,
            **kwargs,
        )
        # Trial ids of the current population, oldest first.
        self.population: List[str] = []
        # No child before every starting point is served (initial_hps first, then
        # random ones up to population_size), nor in the race: its shortest one, the
        # race a calm noise check leaves, so that the warning is never wrong.
        starts = max(self.population_size, len(self.initial_hps or []))
        fraction = self.racing_fraction  # (< 0.9: the search below ends)
        race = int(fraction * self.max_trials) if self.max_trials else 0
        if self.max_trials and self.max_trials - race <= starts:
            least = next(m for m in itertools.count(self.max_trials + 1)
                         if m - int(fraction * m) > starts)
            points = (f"{starts} initial_hps" if starts > self.population_size else
                      f"population_size={starts} random starting points")
            warnings.warn(
                f"max_trials={self.max_trials} breeds no child: the first trials are its "
                f"{points}" + (f" and the last {race} race the finalists" if race else "")
                + f", so this search is a random search. Give max_trials >= {least}"
                + ("." if starts > self.population_size else ", or a smaller population_size."),
                ShortSearchWarning, stacklevel=2)

    # ------------------------------------------------------------- settings
    def strategy_values(self) -> Dict[str, Any]:
        values = super().strategy_values()
        # What follows from another setting is not one of its own: a tournament's
        # size without tournaments, the surrogate's start at population_size.
        if not isinstance(self.selection, TournamentSelection):
            values.pop("tournament_size", None)
        if values.get("surrogate_min_trials") == self.population_size:
            values.pop("surrogate_min_trials")
        return values

    @classmethod
    def settings_space(cls) -> Dict[str, Setting]:
        # The tournament is sized relative to the population, so that every
        # point of the meta space is a valid setting.
        return {
            **super().settings_space(),
            "population_size": Setting("int", 4, 64, log=True, default=10),
            "selection": Setting("categorical", choices=("tournament", "roulette"),
                                 default="tournament"),
            "tournament_fraction": Setting("float", 0.05, 1.0, default=0.3),
            "mutation_rate": Setting("float", 0.0, 0.5, default=0.1),
            "crossover_rate": Setting("float", 0.0, 0.8, default=0.5),
            "aging": Setting("categorical", choices=(True, False), default=False),
            "surrogate_candidates": Setting("int", 1, 32, log=True, default=8),
        }

    @classmethod
    def settings_from_params(cls, params) -> Dict[str, Any]:
        kwargs = super().settings_from_params(params)
        if "surrogate_candidates" not in kwargs and "population_size" in kwargs:
            # A meta-trial recorded before the surrogate existed ran without it:
            # its score is that of unranked children.
            kwargs["surrogate_candidates"] = 1
        fraction = kwargs.pop("tournament_fraction", None)
        if fraction is not None and kwargs.get("selection", "tournament") == "tournament":
            size = int(kwargs.get("population_size", 10))
            kwargs["tournament_size"] = max(1, min(size, round(fraction * size)))
        return kwargs

    # ------------------------------------------------------------ proposals
    def propose(self, trial_id: str) -> Optional[Config]:
        if len(self.start_order) < self.population_size or len(self.population) < 2:
            return self.random_unique()
        return self._breed() or self.random_unique()

    def _select(self, fitness: List[float]) -> str:
        return self.population[self.selection.select(fitness, self._rng)]

    def _population_fitness(self) -> list:
        if (self.selection.multi_objective and self.repeats_configurations
                and len(resolve_objectives(self.objective)) == 1):
            # One objective (several cannot repeat; a ConstrainedObjective's cost
            # stays an axis): NSGA-II ranks the configurations' means, as the
            # other selections do.
            return [[self.config_fitness(self.trials[t])] for t in self.population]
        if self.selection.multi_objective:
            return [self.fitness_vector(self.trials[t]) for t in self.population]
        return [self.config_fitness(self.trials[t]) for t in self.population]

    def _breed(self) -> Optional[Config]:
        fitness = self._population_fitness()
        model = self._surrogate_model()
        if model is None:
            return self._child(fitness)
        # `surrogate_candidates` children, each of its own parents; the model
        # keeps the most promising (ties: the first drawn).
        candidates: Dict[str, Config] = {}
        for _ in range(self.surrogate_candidates):
            child = self._child(fitness)
            if child is not None:
                candidates.setdefault(self.codec.hash(child), child)
        children = list(candidates.values())
        if len(children) < 2:
            return children[0] if children else None
        scores = model.score(np.stack([self._surrogate_row(c) for c in children]))
        return children[int(np.argmax(scores))]

    def _child(self, fitness: list) -> Optional[Config]:
        """A child of parents selected by ``fitness``, not a tried configuration;
        None if mutating it again kept repeating one."""
        first_id = self._select(fitness)
        # Values the parents' models did not read (`note_unused`): mutating
        # only them would train the same model again.
        unused = self.unused_names(first_id)
        second_id = None
        if self._rng.random() < self.crossover_rate:
            second_id = self._select(fitness)
            unused &= self.unused_names(second_id)
        first = child = self.trial_values(first_id)
        crossed = False
        if second_id is not None:
            second = self.trial_values(second_id)
            child = self.codec.crossover(first, second, self._rng)
            crossed = child not in (first, second)
        child = self.codec.mutate(
            child,
            self._rng,
            rate=self.mutation_rate,
            min_mutations=0 if crossed else 1,
            unused=unused,
        )
        for _ in range(_MAX_CHILD_RETRIES):
            if not self.is_duplicate(child):
                return child
            child = self.codec.mutate(
                child, self._rng, rate=0.0, min_mutations=1, unused=unused)
        return None

    # ------------------------------------------------------------ surrogate
    def _surrogate_columns(self) -> Dict[Tuple[str, str, int], Tuple[int, bool, int]]:
        """(name, conditions, tokens) of each decision -> (its column, whether
        ordered, the column's tokens).

        One name in two conditional scopes (keras-tuner allows it) is two
        decisions, with values of their own. A ``Choice`` of more than
        `_SURROGATE_MAX_TOKENS` values shares its tokens out among that many
        (by index): the model's kernels cost the square of a column's tokens.
        """
        return self._surrogate_layout()[0]

    def _surrogate_layout(self):
        """(`_surrogate_columns`, each decision's column by ``id(hp)``), cached per space."""
        space = self.hyperparameters.space
        cached = getattr(self, "_surrogate_columns_of", None)
        if cached is not None and cached[0] is space and cached[1] == len(space):
            return cached[2]  # the space grows by appending: its length tells
        columns: Dict[Tuple[str, str, int], Tuple[int, bool, int]] = {}
        by_hp: Dict[int, Tuple[int, bool, int]] = {}
        for hp in space:
            if self.codec.cardinality(hp) == 1:
                continue
            conditions = json.dumps([c.get_config() for c in hp.conditions], sort_keys=True,
                                    default=str)
            key = (hp.name, conditions, self.codec.num_tokens(hp))
            if key not in columns:
                columns[key] = (len(columns), bool(getattr(hp, "ordered", True)),
                                min(key[2], _SURROGATE_MAX_TOKENS))
            by_hp[id(hp)] = columns[key]
        self._surrogate_columns_of = (space, len(space), (columns, by_hp))
        return columns, by_hp

    def _surrogate_row(self, values: Config) -> np.ndarray:
        """The tokens of ``values``; an inactive decision is its column's extra token."""
        columns, by_hp = self._surrogate_layout()
        row = np.array([k for _, _, k in columns.values()], dtype=np.intp)
        for hp in self.codec.active_decisions(values):
            column = by_hp.get(id(hp))
            if column is None or hp.name not in values:
                continue
            value = self.codec.canonical_value(hp, values[hp.name])
            if not self.codec.is_valid_value(hp, value):
                # A value the space does not hold (`initial_hps` passed on for
                # a setting the model registers later): unknown, as if inactive.
                continue
            n = self.codec.num_tokens(hp)
            row[column[0]] = self.codec.to_token(hp, value) * column[2] // n
        return row

    def _surrogate_model(self) -> Optional[ParzenRatio]:
        """TPE's density ratio over every configuration evaluated so far (by its
        mean fitness), or None: no surrogate, several objectives, or fewer than
        ``surrogate_min_trials`` configurations.

        The token rows are kept, and grown as configurations are evaluated
        (a proposal encodes only the new ones), so the fit is the only cost
        that grows with the search.
        """
        if (self.surrogate is None or self.surrogate_candidates < 2
                or self.selection.multi_objective):
            return None
        groups, means = self._config_fitness(), self._config_means()
        if len(groups) < self.surrogate_min_trials:
            return None
        columns = self._surrogate_columns()
        cache = self._surrogate_rows
        if (cache is None or cache[0] is not groups or len(cache[2]) > len(groups)
                or cache[1].shape[1] != len(columns)):  # a new search state, or space
            cache = self._surrogate_rows = (groups, np.empty((0, len(columns)), np.intp), [])
        groups_, rows, keys = cache
        if len(keys) < len(groups):  # dict order is insertion order: new keys come last
            new = list(groups)[len(keys):]
            first = self._first_trials(new)
            rows = np.concatenate([rows, np.stack(
                [self._surrogate_row(self.trial_values(first[k])) for k in new])])
            keys.extend(new)
            self._surrogate_rows = (groups_, rows, keys)
        fitness = np.fromiter((means[k] for k in keys), dtype=float, count=len(keys))
        model = ParzenRatio([c[2] for c in columns.values()], [c[1] for c in columns.values()])
        return model.fit(rows, fitness)

    # -------------------------------------------------------------- results
    def on_trial_result(self, trial) -> None:
        key = self._id_to_hash[trial.trial_id]
        again = self.repeats_configurations or trial.trial_id in self._repeat_of
        if again and any(self._id_to_hash[t] == key for t in self.population):
            return  # a member evaluated again: its mean score moved
        self.population.append(trial.trial_id)
        # More than one over only when resumed with a smaller population_size.
        while len(self.population) > self.population_size:
            if self.aging:
                self.population.pop(0)
            else:
                self.population.pop(self.selection.discard(self._population_fitness(), self._rng))

    def strategy_diagnostics(self) -> Dict[str, float]:
        fitness = [self.fitness(self.trials[t]) for t in self.population]
        finite = [f for f in fitness if f != -math.inf]
        sign = 1.0 if self.maximize else -1.0
        out = {
            **super().strategy_diagnostics(),
            "population/size": float(len(self.population)),
            "population/failed": float(len(fitness) - len(finite)),
        }
        if finite:
            out.update(
                {
                    "population/best": sign * max(finite),
                    "population/mean": sign * float(np.mean(finite)),
                    "population/worst": sign * min(finite),
                    "population/std": float(np.std(finite)),
                }
            )
        return out

    # ---------------------------------------------------------------- state
    def get_state(self) -> Dict[str, Any]:
        state = super().get_state()
        state["population"] = list(self.population)
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        population = state.get("population")
        if not isinstance(population, list) or any(
            str(t) not in self.trials for t in population
        ):
            raise ValueError(
                "EvolutionOracle state has a bad 'population': expected a list of "
                f"known trial ids, got {population!r}."
            )
        self.population = [str(t) for t in population]
