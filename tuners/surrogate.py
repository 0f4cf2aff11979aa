"""A cheap model that ranks candidate children for `EvolutionOracle`.

`ParzenRatio` is the acquisition of the Tree-structured Parzen Estimator
(Bergstra et al., "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011;
in the multivariate form of Falkner et al., "BOHB", ICML 2018): the evaluated
configurations are split into the best ``gamma(n)`` ("good") and the rest
("bad"), a kernel density is fitted to each over the codec's tokens, and a
candidate ``x`` is scored by ``log l(x) - log g(x)``. It draws no random
numbers (only the candidates it ranks do), so a search that uses it stays
deterministic given its seed. It reads only ranks of the scores, which makes it
robust to noisy ones.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["ParzenRatio", "default_gamma"]


def default_gamma(n: int) -> int:
    """Optuna's TPE split: the best ceil(10%) of ``n``, at least 1, at most 25."""
    return max(1, min(int(math.ceil(0.1 * n)), 25))


class ParzenRatio:
    """TPE's density ratio over token vectors (one token per decision).

    Each density is a mixture of one kernel per configuration and, as in TPE,
    a uniform prior component, so that a good set of one or two
    configurations does not rule the rest of the space out.

    Args:
        cardinalities: Tokens of each decision. Token ``k`` (one past the
            last) stands for an inactive decision, and matches only itself.
        ordered: Whether each decision's tokens are ordered: a discretised
            Gaussian kernel over neighbouring tokens, of Optuna's multivariate
            bandwidth (0.2 n^(-1/(d+4)) of the range, at least half a token);
            otherwise a categorical kernel, ``1 - lam`` on its own token and
            ``lam`` spread evenly.
        lam: The categorical kernel's smoothing, in [0, 1].
        gamma: Size of the good set for ``n`` configurations.

    Example:

        >>> model = ParzenRatio([3, 2], [True, False]).fit(
        ...     np.array([[0, 0], [2, 1], [2, 0]]), np.array([0.9, 0.1, 0.2]))
        >>> bool(model.score(np.array([[0, 0]]))[0] > model.score(np.array([[2, 1]]))[0])
        True
    """

    def __init__(self, cardinalities: Sequence[int], ordered: Sequence[bool], *,
                 lam: float = 0.5, gamma: Callable[[int], int] = default_gamma) -> None:
        if len(cardinalities) != len(ordered):
            raise ValueError(f"one 'ordered' per decision: got {len(ordered)} for "
                             f"{len(cardinalities)} decisions.")
        if any(int(k) < 1 for k in cardinalities):
            raise ValueError(f"cardinalities must be >= 1, got {list(cardinalities)!r}.")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {lam!r}.")
        self.cardinalities = [int(k) for k in cardinalities]
        self.ordered = [bool(o) for o in ordered]
        self.lam = float(lam)
        self.gamma = gamma
        self._good: Optional[Tuple[List[np.ndarray], np.ndarray]] = None
        self._bad: Optional[Tuple[List[np.ndarray], np.ndarray]] = None

    def _log_kernels(self, n: int) -> List[np.ndarray]:
        """Per decision, a (k + 1) x (k + 1) matrix of log kernel values: row a
        is the kernel centred on token a at every token (the last: inactive)."""
        d = max(len(self.cardinalities), 1)
        out = []
        for k, ordered in zip(self.cardinalities, self.ordered):
            kernel = np.zeros((k + 1, k + 1))
            kernel[k, k] = 1.0
            if ordered and k > 2:
                sigma = max(0.2 * n ** (-1.0 / (d + 4)) * k, 0.5)
                index = np.arange(k)
                block = np.exp(-0.5 * ((index[:, None] - index[None, :]) / sigma) ** 2)
                kernel[:k, :k] = block / block.sum(axis=1, keepdims=True)
            else:
                kernel[:k, :k] = self.lam / k
                kernel[np.arange(k), np.arange(k)] += 1.0 - self.lam
            with np.errstate(divide="ignore"):  # log 0: the inactive token elsewhere
                out.append(np.log(kernel))
        return out

    def fit(self, tokens: np.ndarray, fitness: np.ndarray) -> "ParzenRatio":
        """Fits on ``tokens`` (n x d ints) and their ``fitness`` (higher is better).

        Ties in fitness keep the rows' order (a stable sort), so the split is
        deterministic.
        """
        tokens = np.asarray(tokens, dtype=np.intp).reshape(len(tokens), len(self.cardinalities))
        order = np.argsort(-np.asarray(fitness, dtype=float), kind="stable")
        n_good = self.gamma(len(tokens))
        good, bad = tokens[order[:n_good]], tokens[order[n_good:]]
        self._good = (self._log_kernels(max(len(good), 1)), good)
        self._bad = (self._log_kernels(max(len(bad), 1)), bad)
        return self

    def _log_density(self, model, x: np.ndarray) -> np.ndarray:
        log_kernels, data = model
        log_prior = -float(sum(math.log(k) for k in self.cardinalities))
        # In log space: a product over many decisions underflows.
        terms = np.zeros((len(x), len(data) + 1))
        terms[:, -1] = log_prior
        for j, log_kernel in enumerate(log_kernels):
            terms[:, :-1] += log_kernel[data[:, j][None, :], x[:, j][:, None]]
        top = terms.max(axis=1, keepdims=True)
        total = top[:, 0] + np.log(np.exp(terms - top).sum(axis=1))
        return total - math.log(len(data) + 1)

    def score(self, x: np.ndarray) -> np.ndarray:
        """``log l(x) - log g(x)`` of each row of ``x`` (higher: more promising)."""
        if self._good is None:
            raise ValueError("fit the model first.")
        x = np.asarray(x, dtype=np.intp).reshape(len(x), len(self.cardinalities))
        return self._log_density(self._good, x) - self._log_density(self._bad, x)
