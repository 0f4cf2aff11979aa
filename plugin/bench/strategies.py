"""The strategies a benchmark races: metanas's oracles and the peers.

A `Strategy` is either a keras-tuner oracle factory (run through `TableTuner`,
keras-tuner's own search loop) or an Optuna sampler factory (run through Optuna
itself: ``study.ask``/``study.tell``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

__all__ = [
    "Strategy",
    "STRATEGIES",
    "METANAS_STRATEGIES",
    "PEER_STRATEGIES",
    "DEFAULT_STRATEGIES",
    "get_strategy",
    "evolution_strategy",
    "MULTI_OBJECTIVE_STRATEGIES",
    "keras_tuner_seed",
    "register_strategy",
]


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A search strategy under test.

    Attributes:
        name: Short name used in tables (``"metanas/evolution"``).
        kind: ``"keras-tuner"`` (``make`` returns an Oracle) or ``"optuna"``
            (``make`` returns a sampler).
        make: ``make(objective=..., max_trials=..., seed=...)`` for keras-tuner,
            ``make(seed=...)`` for Optuna.
        metanas: Whether it is a metanas strategy (else a peer).
        description: One line for the tables.
        version: Raised when the same name and seed no longer give the same
            run (``--reuse`` takes only runs of the current version).
    """

    name: str
    kind: str
    make: Callable[..., Any]
    metanas: bool
    description: str
    version: int = 1


def _evolution(**settings):
    def make(*, objective, max_trials, seed):
        from metanas.tuners import EvolutionOracle

        return EvolutionOracle(objective=objective, max_trials=max_trials, seed=seed, **settings)

    return make


def evolution_strategy(name: str, description: str = "", *, version: int = 3,
                       **settings) -> Strategy:
    """A metanas `EvolutionOracle` strategy with ``settings`` over its defaults.

    Version 2: the defaults rank children by a TPE surrogate (version 1 did
    not); version 3: they race over the last 30% of ``max_trials`` (10% before).
    """
    return Strategy(name, "keras-tuner", _evolution(**settings), True,
                    description or f"EvolutionOracle({settings})", version=version)


def _metanas_random(*, objective, max_trials, seed):
    from metanas.tuners import RandomSearchOracle

    return RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)


def _rl(**settings):
    def make(*, objective, max_trials, seed):
        from metanas.tuners import RLControllerOracle

        return RLControllerOracle(objective=objective, max_trials=max_trials, seed=seed,
                                  **settings)

    return make


def keras_tuner_seed(seed: int) -> int:
    """The seed handed to a keras-tuner oracle for a run's ``seed``.

    keras-tuner's oracles take ``seed or random.randint(1, 10000)``, so 0 would
    be an unrepeatable random seed, and draw the i-th random value with seed
    ``seed + i``, so runs seeded ``s`` and ``s + k`` (``k`` values per trial)
    would replay each other's configurations one trial apart. A seed drawn
    from ``SeedSequence(seed)`` in [1, 2**30] is never 0 and puts runs far apart.
    """
    import numpy as np

    return 1 + int(np.random.SeedSequence(seed).generate_state(1)[0]) % (2 ** 30)


def _kt_random(*, objective, max_trials, seed):
    import keras_tuner

    return keras_tuner.oracles.RandomSearchOracle(
        objective=objective, max_trials=max_trials, seed=keras_tuner_seed(seed)
    )


def _kt_bayes(*, objective, max_trials, seed):
    import keras_tuner

    return keras_tuner.oracles.BayesianOptimizationOracle(
        objective=objective, max_trials=max_trials, seed=keras_tuner_seed(seed)
    )


def _reference_evolution(*, objective, max_trials, seed):
    from metanas.bench.reference import RegularizedEvolutionOracle

    return RegularizedEvolutionOracle(
        objective=objective, max_trials=max_trials, seed=seed,
        population_size=10, sample_size=3,
    )


def _optuna_tpe(*, seed):
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _optuna_nsga2(*, seed):
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed)


def _optuna_random(*, seed):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _all_strategies() -> Dict[str, Strategy]:
    strategies = [
        evolution_strategy("metanas/evolution",
                           "EvolutionOracle, default settings (tournament, replace-worst, "
                           "TPE-ranked children, a final race over 30%)"),
        # Version 2: the same runs as version 1 of metanas/evolution.
        evolution_strategy("metanas/evolution-no-surrogate",
                           "surrogate=None, racing_fraction=0.1 (the defaults before "
                           "TPE-ranked children and the 30% race)",
                           version=2, surrogate=None, racing_fraction=0.1),
        evolution_strategy("metanas/evolution-tournament-aging",
                           "defaults, selection='tournament', aging=True",
                           selection="tournament", aging=True),
        evolution_strategy("metanas/evolution-roulette-aging",
                           "defaults, selection='roulette', aging=True",
                           selection="roulette", aging=True),
        evolution_strategy("metanas/evolution-roulette-replace-worst",
                           "defaults, selection='roulette', aging=False",
                           selection="roulette", aging=False),
        evolution_strategy("metanas/evolution-noise-check",
                           "defaults, noisy_racing_fraction=0.4 (the race begins at 60% "
                           "and goes on only if the scores prove noisy)",
                           noisy_racing_fraction=0.4),
        Strategy("metanas/random", "keras-tuner", _metanas_random, True,
                 "RandomSearchOracle (no repeats)"),
        # Version 2: rank-normalised rewards (version 1: z-scored, now metanas/rl-zscore).
        Strategy("metanas/rl", "keras-tuner", _rl(), True,
                 "RLControllerOracle, default settings (rank-normalised rewards)", version=2),
        Strategy("metanas/rl-zscore", "keras-tuner", _rl(reward_normalization="zscore"), True,
                 "RLControllerOracle, reward_normalization='zscore' (the previous default)"),
        # Version 2: seeded by `keras_tuner_seed` (version 1 passed the run's seed).
        Strategy("kt/random", "keras-tuner", _kt_random, False,
                 "keras_tuner.oracles.RandomSearchOracle", version=2),
        Strategy("kt/bayesian", "keras-tuner", _kt_bayes, False,
                 "keras_tuner.oracles.BayesianOptimizationOracle", version=2),
        Strategy("optuna/tpe", "optuna", _optuna_tpe, False, "optuna TPESampler (defaults)"),
        Strategy("optuna/random", "optuna", _optuna_random, False, "optuna RandomSampler"),
        Strategy("ref/regularized-evolution", "keras-tuner", _reference_evolution, False,
                 "regularized evolution, population 10, sample 3 (NAS-Bench-201's settings)"),
    ]
    return {s.name: s for s in strategies}


#: Every strategy, by name.
STRATEGIES: Dict[str, Strategy] = _all_strategies()
METANAS_STRATEGIES: Tuple[str, ...] = tuple(n for n, s in STRATEGIES.items() if s.metanas)
PEER_STRATEGIES: Tuple[str, ...] = tuple(n for n, s in STRATEGIES.items() if not s.metanas)
#: Run by default (all of them).
DEFAULT_STRATEGIES: Tuple[str, ...] = tuple(STRATEGIES)


#: Strategies of the two-objective task (NAS-Bench-201 accuracy and model size).
#: NSGA-II evolution discards by Pareto rank and crowding, so it runs without aging.
MULTI_OBJECTIVE_STRATEGIES: Dict[str, Strategy] = {
    s.name: s
    for s in (
        # Version 1: with several objectives, no surrogate ranks the children.
        evolution_strategy("metanas/evolution-nsga2", "defaults, selection='nsga2', aging=False",
                           version=1, selection="nsga2", aging=False),
        Strategy("metanas/random", "keras-tuner", _metanas_random, True,
                 "RandomSearchOracle (no repeats)"),
        Strategy("optuna/nsga2", "optuna", _optuna_nsga2, False,
                 "optuna NSGAIISampler (defaults)"),
        Strategy("optuna/random", "optuna", _optuna_random, False, "optuna RandomSampler"),
    )
}


def register_strategy(strategy: Strategy, *, multi_objective: bool = False) -> Strategy:
    """Adds ``strategy`` to the strategies `metanas bench` and `run_one` know.

    A module that registers its strategies when imported can be named with
    ``metanas bench --strategy-module MODULE`` (it is imported in every worker
    process too). ``make`` must be a module-level function.

    Example:

        >>> import optuna
        >>> from metanas.bench import Strategy, register_strategy
        >>> def make_qmc(*, seed):
        ...     return optuna.samplers.QMCSampler(seed=seed)
        >>> _ = register_strategy(Strategy("mine/qmc", "optuna", make_qmc, False, "Optuna QMC"))

    Args:
        strategy: The `Strategy`; ``metanas=True`` puts it among the
            strategies tested against the best peer, else among the peers.
        multi_objective: Register it for ``--multi-objective`` runs instead.

    Returns:
        ``strategy``.

    Raises:
        ValueError: ``strategy`` is not a `Strategy`, its kind is unknown, its
            name is empty or has a comma, its version is no int, or another
            strategy has that name.
    """
    if not isinstance(strategy, Strategy):
        raise ValueError(f"expected a metanas.bench.Strategy, got {strategy!r}.")
    if strategy.kind not in ("keras-tuner", "optuna"):
        raise ValueError(f"Strategy.kind must be 'keras-tuner' or 'optuna', got {strategy.kind!r}.")
    if not isinstance(strategy.name, str) or not strategy.name.strip() or "," in strategy.name:
        raise ValueError(f"a strategy name must be a non-empty string without commas, "
                         f"got {strategy.name!r}.")
    if isinstance(strategy.version, bool) or not isinstance(strategy.version, int):
        raise ValueError(f"Strategy.version must be an int, got {strategy.version!r}.")
    registry = MULTI_OBJECTIVE_STRATEGIES if multi_objective else STRATEGIES
    if registry.get(strategy.name, strategy) != strategy:
        raise ValueError(f"a strategy named {strategy.name!r} is already registered.")
    registry[strategy.name] = strategy
    return strategy


def get_strategy(name: str, extra: Optional[Dict[str, Strategy]] = None) -> Strategy:
    """The strategy named ``name``; ValueError listing the known names if unknown."""
    known = dict(STRATEGIES, **MULTI_OBJECTIVE_STRATEGIES, **(extra or {}))
    if name not in known:
        raise ValueError(f"unknown strategy {name!r}; expected one of {sorted(known)}.")
    return known[name]
