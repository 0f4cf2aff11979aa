"""PNG plots of searches (matplotlib, imported only when a plot is drawn)."""

from __future__ import annotations

from typing import Sequence

__all__ = ["plot_pareto_front"]


def plot_pareto_front(trials, front, objectives: Sequence, path: str) -> str:
    """Scatters every completed trial on two objectives, the front highlighted.

    Args:
        trials: All trials of the search.
        front: The non-dominated trials (`StrategyTuner.get_pareto_front`).
        objectives: The two `keras_tuner.Objective`s (x axis, y axis).
        path: Where to write the PNG.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metanas.tuners.objectives import best_value

    x_name, y_name = (o.name for o in objectives[:2])

    def point(trial):  # the values the front was chosen by (`pareto_front`)
        return best_value(trial, objectives[0]), best_value(trial, objectives[1])

    done = [t for t in trials if t.status == "COMPLETED" and None not in point(t)]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if done:
        ax.scatter(*zip(*(point(t) for t in done)), s=18, c="0.6", label="trials")
    if front:
        line = sorted(point(t) for t in front)
        ax.plot(*zip(*line), "o-", c="tab:red", label="Pareto front")
    ax.set_xlabel(f"{x_name} ({objectives[0].direction})")
    ax.set_ylabel(f"{y_name} ({objectives[1].direction})")
    if done:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no completed trial", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
