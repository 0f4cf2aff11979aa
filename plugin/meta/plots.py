"""PNG plots of a meta-study: optimisation history and setting importances."""

from __future__ import annotations

import os
import warnings
from typing import List

import optuna

__all__ = ["plot_meta_study"]


def plot_meta_study(study: optuna.Study, directory: str) -> List[str]:
    """Saves the meta-study's plots as PNG files in ``directory``.

    ``history.png`` is Optuna's optimisation history (the meta-objective of
    each meta-trial and the best so far); ``importance-<strategy>.png`` the
    fANOVA importance of each strategy's settings, computed on that strategy's
    meta-trials only (the meta space is conditional on the strategy, and
    Optuna's importances need the same parameters in every trial); and
    ``importance-strategy.png`` that of the choice of strategy, when the
    meta-trials chose more than one.

    Returns:
        The paths written (importances need at least two finished meta-trials
        with different values, and are skipped otherwise).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    os.makedirs(directory, exist_ok=True)
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        raise ValueError(f"the meta-study {study.study_name!r} has no finished meta-trial to plot.")
    paths = []

    def save(name: str, draw) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                axes = draw()
            except (RuntimeError, ValueError, ZeroDivisionError):
                return  # too few or too uniform meta-trials for importances
        path = os.path.join(directory, name)
        axes.figure.tight_layout()
        axes.figure.savefig(path, dpi=100)
        plt.close(axes.figure)
        paths.append(path)

    save("history.png", lambda: ovm.plot_optimization_history(study))
    by_strategy = {}
    for trial in done:
        by_strategy.setdefault(trial.params.get("strategy"), []).append(trial)
    for strategy, trials in sorted(by_strategy.items(), key=lambda item: str(item[0])):
        params = sorted(
            {k for t in trials for k in t.params if k.startswith(f"{strategy}.")}
        )
        if strategy is None or len(trials) < 2 or not params:
            continue
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        save(
            f"importance-{strategy}.png",
            lambda: ovm.plot_param_importances(study, evaluator=evaluator, params=params),
        )
    if len(by_strategy) > 1:
        save(
            "importance-strategy.png",
            lambda: ovm.plot_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), params=["strategy"]
            ),
        )
    return paths
