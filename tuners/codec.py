"""The search-space codec: keras-tuner `HyperParameters` <-> a strategy's decisions.

Every metanas strategy proposes, mutates, recombines and de-duplicates
configurations through this one module, so conditional and growing spaces are
handled in one place. A *configuration* is the plain ``{name: value}`` dict that
keras-tuner keeps in ``Trial.hyperparameters.values``: it holds the values of the
hyperparameters that are active under it, and nothing else.

Conventions:

* A *decision* is an active, tunable hyperparameter (everything but ``Fixed``).
* Walking ``space`` in registration order is always safe for conditions:
  keras-tuner registers a conditional hyperparameter after its parent.
* Numeric values map to the unit interval with keras-tuner's own
  ``value_to_prob``/``prob_to_value``, which already follow ``step`` and the
  ``linear``/``log``/``reverse_log`` sampling. Buckets and Gaussian moves are
  made in that interval, so they are log-aware for free.

Example:

    >>> import keras_tuner, numpy as np
    >>> hp = keras_tuner.HyperParameters()
    >>> _ = hp.Choice("op", ["conv", "pool"])
    >>> _ = hp.Int("filters", 8, 64, step=8, parent_name="op", parent_values=["conv"])
    >>> codec = SearchSpaceCodec(hp)
    >>> rng = np.random.default_rng(0)
    >>> config = codec.sample(rng)
    >>> codec.is_valid(config)
    True
"""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any, Collection, Dict, Iterator, List, Optional, Tuple

import numpy as np
from keras_tuner.engine.hyperparameters import HyperParameters
from keras_tuner.src.engine.hyperparameters import hp_types

Config = Dict[str, Any]

__all__ = ["Config", "SearchSpaceCodec", "values_hash"]

#: Default number of tokens a continuous or wide numeric decision is bucketed into.
DEFAULT_NUM_BUCKETS = 10


def values_hash(values: Config) -> str:
    """Stable hash of a configuration (the same formula as keras-tuner's oracle).

    Sharing keras-tuner's formula means the hash agrees with the oracle's own
    ``_tried_so_far`` bookkeeping, which keras-tuner updates on every trial.
    """
    keys = sorted(values)
    text = "".join(f"{key}={values[key]}" for key in keys)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _is_fixed(hp) -> bool:
    return isinstance(hp, hp_types.Fixed)


def _canonical_number(value, hp):
    if isinstance(hp, hp_types.Int):
        return int(round(value))
    # Rounding keeps floats made by `step` arithmetic hashable to one string; on a
    # continuous range a value in range stays in range (a float32 bound,
    # 9.999999747378752e-05, rounds to 9.99999974738e-05, above a maximum of that
    # value). A stepped range is not clamped: its values are its grid's, rounded alike.
    rounded = float(f"{float(value):.12g}")
    low, high = getattr(hp, "min_value", None), getattr(hp, "max_value", None)
    if (getattr(hp, "step", None) is None and isinstance(low, (int, float))
            and isinstance(high, (int, float)) and low <= value <= high):
        rounded = min(max(rounded, float(low)), float(high))
    return rounded


def _num_values(hp) -> Optional[int]:
    """Number of distinct values of ``hp``, or None when it is continuous."""
    if isinstance(hp, hp_types.Choice):
        return len(hp.values)
    if isinstance(hp, hp_types.Boolean):
        return 2
    if isinstance(hp, hp_types.Fixed):
        return 1
    if hp.step is not None:
        return int(hp._get_n_values())
    if isinstance(hp, hp_types.Int):  # log-sampled Int without a step
        return hp.max_value - hp.min_value + 1
    if hp.min_value == hp.max_value:  # a Float range of one point
        return 1
    return None


def _value_at(hp, index: int) -> Any:
    """The ``index``-th value of a discrete ``hp`` (in increasing prior order)."""
    if isinstance(hp, hp_types.Choice):
        return hp.values[index]
    if isinstance(hp, hp_types.Boolean):
        return bool(index)
    if isinstance(hp, hp_types.Fixed):
        return hp.value
    if hp.step is not None:
        return _canonical_number(hp._get_value_by_index(index), hp)
    return hp.min_value + index


def _below(rng: np.random.Generator, n: int) -> int:
    """A uniform integer in [0, n), also for n beyond numpy's int64 draws
    (keras-tuner takes ``Int("seed", 0, 2**64)``)."""
    if n <= 2**62:
        return int(rng.integers(n))
    bits = (n - 1).bit_length()
    while True:  # rejection: at most two draws expected
        words = rng.integers(0, 2**32, size=(bits + 31) // 32, dtype=np.uint64)
        value = int.from_bytes(words.astype("<u4").tobytes(), "little") >> (-bits % 32)
        if value < n:
            return value


def _index_of(hp, value: Any) -> Optional[int]:
    """Index of ``value`` among ``hp``'s discrete values, or None if not one."""
    if isinstance(hp, (hp_types.Choice, hp_types.Boolean, hp_types.Fixed)):
        options = [_value_at(hp, i) for i in range(_num_values(hp))]
        for i, option in enumerate(options):
            if option == value and type(option) is type(value):
                return i
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    n = _num_values(hp)
    if hp.step is None:
        guess = value - hp.min_value
    elif hp.sampling == "linear" and all(
            isinstance(v, int) for v in (value, hp.min_value, hp.step)):
        guess = (value - hp.min_value) // hp.step  # exact, also beyond a float's 53 bits
    elif hp.sampling == "linear":
        guess = (value - hp.min_value) / hp.step
    elif value <= 0 or (hp.sampling == "reverse_log" and hp.max_value + hp.min_value - value <= 0):
        return None
    elif hp.sampling == "log":
        guess = math.log(value / hp.min_value) / math.log(hp.step)
    else:
        guess = math.log((hp.max_value + hp.min_value - value) / hp.min_value) / math.log(
            hp.step
        )
    index = int(round(guess))
    if 0 <= index < n and _value_at(hp, index) == _canonical_number(value, hp):
        return index
    return None


class SearchSpaceCodec:
    """Turns a keras-tuner search space into decisions, and decisions back.

    The codec holds the `HyperParameters` object it was given, not a copy, so it
    sees hyperparameters that the hypermodel registers later (growing spaces).

    Args:
        hyperparameters: The search space, usually ``oracle.hyperparameters``.
        num_buckets: How many tokens a continuous ``Float``, or an ``Int`` or
            ``Float`` range with more distinct values than this, is mapped to
            (see `to_token`; a ``Choice`` has one token per value).
        local_move_prob: In `mutate`, the probability that an ordered decision
            moves to a neighbouring value (or, for a continuous one, by a small
            Gaussian step) instead of being redrawn uniformly.
    """

    def __init__(
        self,
        hyperparameters: HyperParameters,
        *,
        num_buckets: int = DEFAULT_NUM_BUCKETS,
        local_move_prob: float = 0.5,
    ) -> None:
        if not isinstance(num_buckets, int) or num_buckets < 2:
            raise ValueError(f"num_buckets must be an int >= 2, got {num_buckets!r}.")
        if not 0.0 <= local_move_prob <= 1.0:
            raise ValueError(
                f"local_move_prob must be in [0, 1], got {local_move_prob!r}."
            )
        self.hyperparameters = hyperparameters
        self.num_buckets = num_buckets
        self.local_move_prob = local_move_prob

    # ------------------------------------------------------------------ space
    @property
    def space(self):
        return self.hyperparameters.space

    def _active(self, hp, values: Config) -> bool:
        return all(cond.is_active(values) for cond in hp.conditions)

    def active_decisions(self, values: Config) -> List[Any]:
        """The tunable hyperparameters active under ``values``, in space order."""
        return [
            hp for hp in self.space if not _is_fixed(hp) and self._active(hp, values)
        ]

    def decision_names(self) -> List[str]:
        """Names of every tunable hyperparameter of the space, in space order."""
        seen: Dict[str, None] = {}
        for hp in self.space:
            if not _is_fixed(hp):
                seen.setdefault(hp.name, None)
        return list(seen)

    # ------------------------------------------------------- single decisions
    def sample_value(self, hp, rng: np.random.Generator) -> Any:
        """A value of ``hp`` drawn from its prior (keras-tuner's sampling)."""
        if _is_fixed(hp):
            return hp.value
        if isinstance(hp, hp_types.Choice):
            return hp.values[int(rng.integers(len(hp.values)))]
        if isinstance(hp, hp_types.Boolean):
            return bool(rng.integers(2))
        return _canonical_number(hp.prob_to_value(float(rng.random())), hp)

    def is_valid_value(self, hp, value: Any) -> bool:
        """Whether ``value`` is a legal value of ``hp``."""
        if value is None:
            return False
        if isinstance(hp, hp_types.Int) and type(value) is not int:
            return False
        if isinstance(hp, hp_types.Float) and type(value) is not float:
            return False
        if _num_values(hp) is not None:
            return _index_of(hp, value) is not None
        return hp.min_value <= value <= hp.max_value

    def canonical_value(self, hp, value: Any) -> Any:
        """``value`` cast to ``hp``'s type (int 3 -> 3.0 for a Float, 0 -> False for a
        Boolean, 128.0 -> 128 among int choices), or as is."""
        if isinstance(hp, hp_types.Choice) and isinstance(value, (float, np.floating)) and (
                float(value) not in hp.values):  # (float32 == float compares in float32)
            # A float32 number (a row of a float32 table, or its decimal) is the one
            # option it rounds from: np.float32(0.001).item() is 0.0010000000474974513.
            near = [o for o in hp.values
                    if isinstance(o, float) and np.float32(o) == np.float32(value)]
            if len(near) == 1:
                return near[0]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(hp, (hp_types.Int, hp_types.Float)) and isinstance(
            value, (int, float)
        ) and not isinstance(value, bool):
            return _canonical_number(value, hp)
        if isinstance(hp, (hp_types.Choice, hp_types.Boolean)) and isinstance(
            value, (int, float)
        ) and not isinstance(value, bool):
            # A number equal to one option (keras-tuner compares with ``==``):
            # AutoKeras's ``"dropout": 0`` among floats, ``128.0`` among ints,
            # ``0`` for a Boolean's False, is that option.
            options = hp.values if isinstance(hp, hp_types.Choice) else [False, True]
            for option in options:
                if type(option) is not type(value) and isinstance(option, (int, float)) \
                        and option == value:
                    return option
        return value

    def cardinality(self, hp) -> Optional[int]:
        """Number of distinct values of ``hp``, or None when continuous."""
        return _num_values(hp)

    def _unit(self, hp, value) -> float:
        return min(max(float(hp.value_to_prob(value)), 0.0), 1.0)

    def mutate_value(self, hp, value: Any, rng: np.random.Generator) -> Any:
        """A value of ``hp`` different from ``value`` where ``hp`` has two or more.

        Ordered decisions (numeric ``Choice``, ``Int``, ``Float``) take a local
        move with probability ``local_move_prob``: to a neighbouring value, or a
        Gaussian step of 0.1 in the unit interval when continuous; otherwise the
        value is redrawn uniformly among the other values.
        """
        if _is_fixed(hp):
            return hp.value
        if isinstance(hp, hp_types.Boolean):
            return not bool(value)
        n = _num_values(hp)
        ordered = not isinstance(hp, hp_types.Choice) or bool(hp.ordered)
        if n is not None:
            if n < 2:
                return _value_at(hp, 0)
            index = _index_of(hp, value)
            if index is None:
                return _value_at(hp, _below(rng, n))
            if ordered and rng.random() < self.local_move_prob:
                if n > self.num_buckets and not isinstance(hp, hp_types.Choice):
                    # A wide range (Int 1..1000): a neighbour is too timid a
                    # move, so step in the unit interval, as for a Float.
                    unit = self._unit(hp, value) + float(rng.normal(0.0, 0.1))
                    moved = _canonical_number(
                        hp.prob_to_value(min(max(unit, 0.0), 1.0 - 1e-12)), hp
                    )
                    if moved != value and self.is_valid_value(hp, moved):
                        return moved
                if index == 0:
                    return _value_at(hp, 1)
                if index == n - 1:
                    return _value_at(hp, n - 2)
                return _value_at(hp, index + (1 if rng.random() < 0.5 else -1))
            other = _below(rng, n - 1)
            return _value_at(hp, other + 1 if other >= index else other)
        # Continuous Float.
        if hp.min_value == hp.max_value:
            return _canonical_number(hp.min_value, hp)
        if rng.random() < self.local_move_prob and self.is_valid_value(hp, value):
            unit = self._unit(hp, value) + float(rng.normal(0.0, 0.1))
            unit = min(max(unit, 0.0), 1.0 - 1e-12)
        else:
            unit = float(rng.random())
        return _canonical_number(hp.prob_to_value(unit), hp)

    # ------------------------------------------------------- configurations
    def repair(
        self, values: Config, rng: Optional[np.random.Generator] = None
    ) -> Config:
        """A valid configuration as close to ``values`` as the space allows.

        Walks the space in order: keeps valid values of active hyperparameters,
        drops inactive ones and names the space does not know, and fills active
        hyperparameters that are missing or invalid (e.g. a name the space grew
        after ``values`` was made) by sampling from ``rng``, or with the
        hyperparameter's default when ``rng`` is None.
        """
        out: Config = {}
        for hp in self.space:
            if hp.name in out or not self._active(hp, out):
                continue
            value = self.canonical_value(hp, values.get(hp.name))
            if not self.is_valid_value(hp, value):
                value = self.sample_value(hp, rng) if rng is not None else hp.default
            out[hp.name] = value
        return out

    def is_valid(self, values: Config) -> bool:
        """Whether ``values`` is exactly a complete configuration of the space."""
        repaired = self.repair(values)
        return repaired == values and all(
            type(values[k]) is type(v) for k, v in repaired.items()
        )

    def sample(self, rng: np.random.Generator) -> Config:
        """A configuration drawn from the prior, conditions respected."""
        return self.repair({}, rng)

    def mutate(
        self,
        values: Config,
        rng: np.random.Generator,
        *,
        rate: float = 0.0,
        min_mutations: int = 1,
        unused: Collection[str] = (),
    ) -> Config:
        """Mutates active decisions of ``values``.

        Each active decision mutates with probability ``rate``; if fewer than
        ``min_mutations`` did, more are picked at random among those left.
        Decisions that become active through a mutated parent are sampled; those
        that become inactive are dropped.

        Args:
            values: The parent configuration.
            rng: The caller's random source.
            rate: Per-decision mutation probability, in [0, 1].
            min_mutations: Decisions mutated at the least (where there are that
                many with two or more values).
            unused: Names whose values the parent's model did not read: they
                may mutate too, but do not count toward ``min_mutations``
                (changing only them changes no model).
        """
        child = self.repair(values, rng)
        mutable = [
            hp for hp in self.active_decisions(child) if self.cardinality(hp) != 1
        ]
        chosen = [hp for hp in mutable if rate > 0 and rng.random() < rate]
        used = [hp for hp in chosen if hp.name not in unused]
        if len(used) < min_mutations:
            rest = [hp for hp in mutable if hp not in chosen and hp.name not in unused]
            extra = min(min_mutations - len(used), len(rest))
            if extra > 0:
                picks = rng.choice(len(rest), size=extra, replace=False)
                chosen += [rest[int(i)] for i in sorted(picks)]
        for hp in self.space:  # space order, so parents change before children
            if any(hp is c for c in chosen) and self._active(hp, child):
                child[hp.name] = self.mutate_value(hp, child[hp.name], rng)
                child = self.repair(child, rng)
        return child

    def crossover(
        self, first: Config, second: Config, rng: np.random.Generator
    ) -> Config:
        """Uniform crossover that respects conditions.

        Walking the space in order, each active decision takes its value from a
        parent picked by a fair coin among the parents that hold a valid value
        for it; if neither does (the decision became active through a mix of the
        parents, or the space grew), it is sampled. The child is always valid.
        """
        child: Config = {}
        for hp in self.space:
            if hp.name in child or not self._active(hp, child):
                continue
            options = [
                v
                for v in (
                    self.canonical_value(hp, first.get(hp.name)),
                    self.canonical_value(hp, second.get(hp.name)),
                )
                if self.is_valid_value(hp, v)
            ]
            if not options:
                child[hp.name] = self.sample_value(hp, rng)
            elif len(options) == 1:
                child[hp.name] = options[0]
            else:
                child[hp.name] = options[int(rng.integers(2))]
        return child

    def hash(self, values: Config) -> str:
        """Stable de-duplication key of a configuration (see `values_hash`)."""
        return values_hash(values)

    # ------------------------------------------------------------ finiteness
    def size(self, limit: int = 100_000) -> Optional[int]:
        """Number of distinct configurations, or None if infinite or over ``limit``."""
        count = 0
        for _ in self.enumerate(limit=limit + 1):
            count += 1
        return None if count > limit or count == 0 else count

    def enumerate(self, limit: Optional[int] = None) -> Iterator[Config]:
        """Yields every configuration of a discrete space (depth-first, in order).

        Yields nothing when the space has a continuous decision: it is then
        infinite (`branches` walks its finite branches).
        """
        if any(_num_values(hp) is None for hp in self.space):
            return
        for values, _ in self.branches(limit=limit):
            yield values

    def branches(self, limit: Optional[int] = None) -> Iterator[Tuple[Config, bool]]:
        """Yields ``(values, True)`` for each configuration of the space's finite
        branches and ``(prefix, False)`` where a branch reaches an active
        continuous decision: ``prefix`` holds the decisions before it, and
        `repair` completes it into a configuration of that (infinite) branch.
        Depth-first, in space order, as `enumerate`.
        """
        space = list(self.space)

        def walk(index: int, partial: Config) -> Iterator[Tuple[Config, bool]]:
            while index < len(space) and (
                space[index].name in partial or not self._active(space[index], partial)
            ):
                index += 1
            if index == len(space):
                yield dict(partial), True
                return
            hp = space[index]
            n = _num_values(hp)
            if n is None:
                yield dict(partial), False
                return
            for i in range(n):
                partial[hp.name] = _value_at(hp, i)
                yield from walk(index + 1, partial)
                del partial[hp.name]

        yield from itertools.islice(walk(0, {}), limit)

    # ---------------------------------------------------------------- tokens
    def num_tokens(self, hp) -> int:
        """Number of tokens for ``hp``: its values, or ``num_buckets`` if more.

        A ``Choice`` always has one token per value: its values are a list, not
        a range, so a bucket's centre (keras-tuner's unit interval) would name a
        value that is not in it, or no value at all for strings.
        """
        n = self.cardinality(hp)
        if isinstance(hp, hp_types.Choice):
            return n
        return self.num_buckets if n is None or n > self.num_buckets else n

    def to_token(self, hp, value: Any) -> int:
        """The token of ``value``: its index, or its bucket of the unit interval.

        Numeric ranges with more values than ``num_buckets`` are bucketed in
        keras-tuner's unit interval, which is log-scaled for ``sampling="log"``,
        so buckets are equal in log space there.
        """
        n = self.num_tokens(hp)
        if _num_values(hp) == n:
            index = _index_of(hp, self.canonical_value(hp, value))
            if index is None:
                raise ValueError(f"{value!r} is not a value of {hp.name!r}.")
            return index
        return min(int(self._unit(hp, value) * n), n - 1)

    def bucketed(self, hp) -> bool:
        """Whether ``hp``'s tokens stand for buckets of values (see `to_token`)."""
        return _num_values(hp) != self.num_tokens(hp)

    def from_token(self, hp, token: int, position: float = 0.5) -> Any:
        """The value a token stands for: for a bucket, the value at ``position``
        in it (in [0, 1); 0.5, its centre), snapped to ``step`` (an integer range
        rounds it, sometimes to a value of the neighbouring bucket).

        A policy that draws ``position`` at random can reach every value of a
        bucketed range, not only the centres.
        """
        n = self.num_tokens(hp)
        if not 0 <= token < n:
            raise ValueError(
                f"token {token!r} is out of range for {hp.name!r}: allowed 0..{n - 1}."
            )
        if not 0.0 <= position < 1.0:
            raise ValueError(f"position must be in [0, 1), got {position!r}.")
        if not self.bucketed(hp):
            return _value_at(hp, token)
        value = _canonical_number(hp.prob_to_value((token + position) / n), hp)
        if hp.step is None:  # (an Int's rounding can pass the maximum, just below 1)
            value = min(max(value, hp.min_value), hp.max_value)
        return value

    def encode(self, values: Config) -> Dict[str, int]:
        """Tokens of the active decisions of ``values``, in space order."""
        return {
            hp.name: self.to_token(hp, values[hp.name])
            for hp in self.active_decisions(values)
            if hp.name in values
        }
