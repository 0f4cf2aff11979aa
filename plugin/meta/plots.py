"""PNG plots of a meta-study: optimisation history and setting importances."""

from __future__ import annotations

import os
import time
import warnings
from typing import List, Optional

import optuna

from metanas.meta.learner import best_of, meta_trained

__all__ = ["plot_meta_study", "log_meta_study"]


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
    done = meta_trained(study)  # (a recorded production search showed as the best)
    if not done:
        raise ValueError(f"the meta-study {study.study_name!r} has no finished meta-trial to plot.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(directions=study.directions, study_name=study.study_name)
    study.add_trials(done)  # (in memory: what the plots show)
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
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
                params=["strategy"],
            ),
        )
    return paths


def log_meta_study(
    study: optuna.Study, paths: List[str], *, storage: str, tracking_uri: Optional[str] = None
) -> Optional[str]:
    """Logs the meta-study's plots and summary to MLflow as one run.

    The run is named ``meta-study-<study name>`` in the experiment
    ``metanas-meta``; it carries the (redacted) storage URL and the study's
    size as params, the best meta-objective as a metric, and the PNGs in
    ``paths`` as artifacts. MLflow being unreachable never fails a
    meta-training: the plots stay on disk and a warning says so.

    Args:
        study: The meta-study.
        paths: PNG files written by `plot_meta_study`.
        storage: The meta-study's storage URL (logged redacted).
        tracking_uri: MLflow tracking URI; by default ``MLFLOW_TRACKING_URI``,
            else MLflow's default store in the working directory.

    Returns:
        The MLflow run id, or None when MLflow could not be reached. A
        tracking server that does not answer its ``/health`` page within two
        seconds, or a local store that cannot be written, is given up on at
        once (was: minutes of MLflow's HTTP retries, or of its SQLite ones).
    """
    from metanas.security import redact
    from metanas.tracking.tracker import server_problem, short_http_retries, store_problem

    try:
        import mlflow

        uri = tracking_uri if tracking_uri is not None else mlflow.get_tracking_uri()
        problem = store_problem(uri) or server_problem(uri)
        if problem is None:
            with short_http_retries():
                return _log_run(study, paths, storage=storage, tracking_uri=tracking_uri)
        reason = f"the tracking store {redact(uri)} is not usable: {problem}"
    except Exception as error:  # noqa: BLE001 - tracking never fails meta-training
        reason = _brief(redact(str(error))) or type(error).__name__
    warnings.warn(
        f"the meta-study plots were not logged to MLflow ({reason}); they are on disk: {paths}",
        stacklevel=2,
    )
    return None


def _log_run(study: optuna.Study, paths: List[str], *, storage: str,
             tracking_uri: Optional[str]) -> str:
    """`log_meta_study`'s run; raises what MLflow raises."""
    import mlflow

    from metanas.security import redact
    from metanas.tracking import records
    from metanas.tracking.tracker import make_client

    client = make_client(tracking_uri)  # an unknown scheme: a ValueError that names it
    experiment_id = records.experiment_id(client, "metanas-meta", records.RunCache())
    done = meta_trained(study)  # (a recorded production search was logged as the best)
    best = [mlflow.entities.Metric("best_meta_objective", float(best_of(study, done).value),
                                   int(time.time() * 1000), 0)] if done else []
    run = client.create_run(experiment_id, run_name=f"meta-study-{study.study_name}")
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=best,
        params=[
            mlflow.entities.Param("storage", redact(storage)),
            mlflow.entities.Param("study_name", study.study_name),
            mlflow.entities.Param("meta_trials", str(len(done))),
        ],
    )
    for path in paths:
        client.log_artifact(run_id, path, artifact_path="meta-study")
    client.set_terminated(run_id)
    return run_id


def _brief(text: str, limit: int = 500) -> str:
    """The first line of an error's ``text``, cut (at a space) only when longer than ``limit``."""
    lines = text.strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) <= limit:
        return first
    cut = first.rfind(" ", 0, limit)
    return first[: cut if cut > 0 else limit].rstrip(" ,;:") + " ..."
