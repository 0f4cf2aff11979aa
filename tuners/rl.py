"""The RL controller: an LSTM policy trained by REINFORCE proposes each trial."""

from __future__ import annotations

import bisect
import math
import numbers
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from metanas.tuners.base import MetanasOracle, Setting, TrialStatus, check_int
from metanas.tuners.codec import Config
from metanas.tuners.policy import ControllerPolicy, Step

__all__ = ["RLControllerOracle"]

#: Draws from the policy that may collide with tried configurations before the
#: oracle draws from a flatter (tempered) policy, then at random.
_MAX_POLICY_DRAWS = 10
#: Temperature factors of the tempered draws: a converged policy keeps
#: proposing configurations near its favourite rather than random ones.
_TEMPERED_DRAWS = (2.0, 2.0, 4.0, 4.0, 8.0, 8.0, 16.0, 16.0)
REWARD_NORMALIZATIONS = ("rank", "zscore", "none")
#: Bound of a normalised reward (``"rank"``'s are within +-sqrt(3); a raw loss
#: beyond it is as bad as it).
_MAX_REWARD = 1e30
#: Largest advantage an update takes; a batch with larger ones is scaled down
#: as a whole (its direction kept: the gradient is clipped to ``clip_norm``
#: anyway), since the squared gradients of an advantage of 1e20 overflow
#: float32, where the policy computes, and every weight became NaN.
_MAX_ADVANTAGE = 1e12


def _check_number(name: str, value: Any, *, low: float, high: float,
                  low_open: bool = False, high_open: bool = False,
                  allow_none: bool = False) -> Optional[float]:
    """Validates a float setting; raises ValueError naming value and range.

    Every range is finite: the policy computes in float32, where a temperature
    of 1e-40 is 0 and an entropy weight of 1e300 is inf.
    """
    if value is None and allow_none:
        return None
    allowed = (f"{'>' if low_open else '>='} {low:g} and {'<' if high_open else '<='} {high:g}"
               + (" (or None)" if allow_none else ""))
    try:  # (a real number only: numbers.Real leaves out complex ones)
        number = None if isinstance(value, bool) or not isinstance(
            value, numbers.Real) else float(value)
    except OverflowError:  # an int too large for a float
        number = None
    if (number is None or not math.isfinite(number)
            or (number <= low if low_open else number < low)
            or (number >= high if high_open else number > high)):
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}.")
    return number


class RLControllerOracle(MetanasOracle):
    """A recurrent controller that writes each configuration, trained by REINFORCE.

    The controller (`metanas.tuners.policy.ControllerPolicy`, a Keras LSTM)
    walks the search space in order and, for every *active* decision, reads
    the embedding of the previous decision's token and samples a token of the
    current decision from its own softmax head — so conditional
    hyperparameters are decided only when their parent's value makes them
    active, and a hyperparameter that appears mid-search gets a new head while
    the old heads keep what they learnt. ``Int`` and ``Float`` ranges with many
    values are bucketed by the codec (`SearchSpaceCodec.to_token`), and the
    value is drawn uniformly within the bucket drawn (in keras-tuner's unit
    interval, so log-uniformly for ``sampling="log"``; an integer range rounds
    it), so every value can be proposed; a ``Choice`` has a token per value. Tokens are drawn by
    inverse-CDF from the oracle's own seeded ``Generator``; the initial
    weights come from the oracle's seed, so equal seeds give equal searches.

    When a trial ends, its reward is its fitness (the objective, negated for
    ``min`` objectives; `MetanasOracle.fitness`). The policy is trained by
    REINFORCE (Williams 1992) as in Zoph & Le ("Neural Architecture Search
    with Reinforcement Learning", ICLR 2017) and ENAS (Pham et al., ICML
    2018): every ``batch_size`` finished trials it takes one Adam step on
    ``-mean((r - b) * log pi(a)) - entropy_weight * mean(H(pi))`` with
    gradients clipped to ``clip_norm``, where ``b`` is an exponential moving
    average of the rewards (``baseline_decay``). The update is asynchronous:
    with several workers, the trials that have finished are used, with the
    actions as they were sampled (stored per trial), while others still run.
    Only the decisions whose values the trial's model read (`note_unused`;
    the tuner records it) take part in ``log pi(a)``: a one-layer model's
    ``units_2`` says nothing about ``units_2``, so that reward adds nothing
    to that head's gradient (its token still feeds the LSTM's next step; Adam's
    momentum from earlier rewards still moves it).

    Reward normalisation (``reward_normalization``): ``"rank"`` (default)
    replaces each reward by its centred rank among every success's reward so
    far (the reward included; ties share their mean rank), scaled to unit
    variance: ``sqrt(12) * (rank / n - 1/2)``, in ``[-sqrt(3), sqrt(3)]``.
    This is the fitness shaping of natural evolution strategies (Wierstra et
    al., JMLR 2014; Salimans et al., 2017): the learning rate means the same
    for an accuracy in [0, 1] and a loss in the thousands, a diverged run's
    huge loss is merely the worst rank, and a failure is at worst the lowest.
    ``"zscore"`` (the default before) standardises by the mean and
    standard deviation of the rewards seen (Welford's running estimate):
    one outlier inflates that deviation for the rest of the search, and a
    ``failed_trial_reward`` far below the rewards becomes an advantage of
    tens of deviations. ``"none"`` uses the fitness as is.

    A failed trial gets the reward ``failed_trial_reward`` (in fitness units:
    higher is better, so a negative loss for ``min`` objectives), or by
    default the worst reward seen so far; failed rewards do not enter the
    normalisation statistics.

    No configuration is proposed twice. When the policy draws one that was
    already tried, it still learns from the draw, with the reward that
    configuration got (otherwise only its unusual, unseen draws would be
    learnt from, a bias that stalls learning); after ``10`` such draws the
    oracle draws from a flatter policy (temperature x2 ... x16), and only
    then at random, so a converged policy keeps proposing configurations near
    its favourite.

    The first ``num_initial_points`` trials are ``initial_hps`` and then random
    configurations; their rewards, like those of the flatter or random
    draws, only inform the baseline and the reward statistics (the policy did
    not sample them, so they carry no policy gradient).

    Args:
        objective, max_trials, seed, hyperparameters, initial_hps, and the
            remaining keras-tuner settings: see `MetanasOracle`.
        units: Hidden size of the LSTM (and of the token embeddings); ENAS: 64.
            In [1, 4096].
        num_layers: Stacked LSTM layers, in [1, 8].
        temperature: Logits are divided by it before sampling, in [0.01, 100].
        tanh_constant: Logits become ``tanh_constant * tanh(logits)`` (ENAS),
            in (0, 100]; None disables it.
        learning_rate: Adam's learning rate, in (0, 10].
        baseline_decay: Decay of the moving-average baseline, in [0, 1).
        entropy_weight: Weight of the entropy bonus, in [0, 100].
        clip_norm: Global-norm gradient clipping, in (0, 1e6], or None.
        batch_size: Finished trials per policy update, in [1, 4096].
        num_initial_points: Warm-up trials (``initial_hps``, then random), >= 0.
        reward_normalization: ``"rank"``, ``"zscore"`` or ``"none"`` (see above).
        failed_trial_reward: Reward of a failed trial, in [-1e30, 1e30], or
            None (the worst seen).

    Example:

        >>> oracle = RLControllerOracle(
        ...     objective="val_accuracy", max_trials=100, seed=7,
        ...     learning_rate=0.01, entropy_weight=1e-3, batch_size=4)
    """

    def __init__(
        self,
        objective=None,
        max_trials: Optional[int] = None,
        *,
        seed: Optional[int] = None,
        hyperparameters=None,
        units: int = 64,
        num_layers: int = 1,
        temperature: float = 1.0,
        tanh_constant: Optional[float] = 2.5,
        learning_rate: float = 5e-3,
        baseline_decay: float = 0.99,
        entropy_weight: float = 1e-4,
        clip_norm: Optional[float] = 5.0,
        batch_size: int = 1,
        num_initial_points: int = 5,
        reward_normalization: str = "rank",
        failed_trial_reward: Optional[float] = None,
        initial_hps=None,
        **kwargs: Any,
    ) -> None:
        self.units = check_int("units", units, low=1, high=4096)
        self.num_layers = check_int("num_layers", num_layers, low=1, high=8)
        self.temperature = _check_number("temperature", temperature, low=0.01, high=100.0)
        self.tanh_constant = _check_number(
            "tanh_constant", tanh_constant, low=0, high=100.0, low_open=True, allow_none=True
        )
        self.learning_rate = _check_number(
            "learning_rate", learning_rate, low=0, high=10.0, low_open=True
        )
        self.baseline_decay = _check_number(
            "baseline_decay", baseline_decay, low=0, high=1, high_open=True)
        self.entropy_weight = _check_number("entropy_weight", entropy_weight, low=0, high=100.0)
        self.clip_norm = _check_number(
            "clip_norm", clip_norm, low=0, high=1e6, low_open=True, allow_none=True
        )
        self.batch_size = check_int("batch_size", batch_size, low=1, high=4096)
        self.num_initial_points = check_int("num_initial_points", num_initial_points, low=0)
        if reward_normalization not in REWARD_NORMALIZATIONS:
            raise ValueError(
                f"reward_normalization must be one of {REWARD_NORMALIZATIONS}, "
                f"got {reward_normalization!r}."
            )
        self.reward_normalization = reward_normalization
        self.failed_trial_reward = _check_number(
            "failed_trial_reward", failed_trial_reward, low=-1e30, high=1e30, allow_none=True
        )
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            seed=seed,
            hyperparameters=hyperparameters,
            initial_hps=initial_hps,
            **kwargs,
        )
        self.policy = self._new_policy()
        # Sampled actions of trials not learnt from yet: {trial_id: [[name, token], ...]}
        # (None: not sampled by the policy).
        self._actions: Dict[str, Optional[List[List[Any]]]] = {}
        # Samples not learnt from yet: [actions, advantage].
        self._pending: List[List[Any]] = []
        # Reward of every finished configuration, by hash, for repeated draws,
        # and the values its model did not read (`note_unused`), if any.
        self._rewards: Dict[str, float] = {}
        self._unread: Dict[str, List[str]] = {}
        self.baseline: Optional[float] = None
        self._reward_stats = [0, 0.0, 0.0]  # Welford: count, mean, M2
        self._reward_sorted: List[float] = []  # every success's reward, in order
        self._worst_reward: Optional[float] = None
        self.updates = 0
        self.last_loss: Optional[float] = None
        self.last_entropy: Optional[float] = None
        # The encoded policy, for the decisions it was encoded with: re-encoded
        # after an update, or when sampling has added a decision's head.
        self._policy_blob: Optional[Tuple[Tuple[str, ...], str]] = None

    def _new_policy(self) -> ControllerPolicy:
        return ControllerPolicy(
            units=self.units,
            num_layers=self.num_layers,
            seed=self.seed,
            temperature=self.temperature,
            tanh_constant=self.tanh_constant,
            learning_rate=self.learning_rate,
            entropy_weight=self.entropy_weight,
            clip_norm=self.clip_norm,
        )

    # ------------------------------------------------------------- settings
    @classmethod
    def settings_space(cls) -> Dict[str, Setting]:
        return {
            **super().settings_space(),
            "learning_rate": Setting("float", 1e-4, 5e-2, log=True, default=5e-3),
            "entropy_weight": Setting("float", 1e-5, 1e-1, log=True, default=1e-4),
            "baseline_decay": Setting("float", 0.5, 0.999, default=0.99),
            "temperature": Setting("float", 0.5, 5.0, log=True, default=1.0),
            "tanh_constant": Setting("float", 1.0, 5.0, default=2.5),
            "batch_size": Setting("int", 1, 8, log=True, default=1),
            "num_initial_points": Setting("int", 0, 20, default=5),
            "units": Setting("categorical", choices=(32, 64), default=64),
        }

    # ------------------------------------------------------------ proposals
    def _sample(self, heat: float = 1.0) -> Tuple[Config, List[List[Any]]]:
        """One configuration drawn from the policy, with its (name, token) actions.

        ``heat`` multiplies the temperature (> 1: a flatter policy).
        """
        policy = self.policy
        values: Config = {}
        actions: List[List[Any]] = []
        state = policy.initial_state()
        for hp, choices, bucketed in self._decision_table():
            if hp.name in values or not all(c.is_active(values) for c in hp.conditions):
                continue
            if len(choices) == 1:
                values[hp.name] = choices[0]
                continue
            head = self._head(hp, len(choices))
            j = policy.index(head, len(choices))
            probs, lstm = policy.probabilities(state, j, heat)
            cdf = np.cumsum(probs)
            token = int(min(np.searchsorted(cdf, self._rng.random() * cdf[-1], "right"),
                            len(probs) - 1))
            # A bucket of a range: any value in it, not only its centre (the
            # action is the token; where in the bucket is the draw's own).
            values[hp.name] = (self.codec.from_token(hp, token, float(self._rng.random()))
                               if bucketed else choices[token])
            actions.append([head, token])
            state = policy.advance(lstm, j, token)
        return values, actions

    def _head(self, hp, num_tokens: int) -> str:
        """The name of ``hp``'s policy head: its own, or, when a hyperparameter of
        that name in another conditional scope has another number of values
        (keras-tuner allows it), the name and ``#`` that number."""
        policy = self.policy
        if hp.name in policy.decisions:
            if policy.sizes[policy.decisions.index(hp.name)] != num_tokens:
                return f"{hp.name}#{num_tokens}"
        return hp.name

    def _decision_table(self) -> List[Tuple[Any, List[Any], bool]]:
        """(hyperparameter, value of each token, whether its tokens are buckets)
        in space order, cached per space."""
        codec = self.codec
        # The codec itself, not its id: a replaced space's codec is freed, and a
        # new one may be given its address. The space grows by appending.
        cached = getattr(self, "_table_of", None)
        if cached is None or cached[0] is not codec or cached[1] != len(codec.space):
            table = [
                (hp, [codec.from_token(hp, t) for t in range(codec.num_tokens(hp))],
                 codec.bucketed(hp))
                for hp in codec.space
            ]
            self._table_of = (codec, len(codec.space), table)
        return self._table_of[2]

    def propose(self, trial_id: str) -> Optional[Config]:
        # keras-tuner records a trial in `start_order` after proposing it.
        if len(self.start_order) >= self.num_initial_points:
            for _ in range(_MAX_POLICY_DRAWS):
                values, actions = self._sample()
                match = self.tried_match(values)
                if match is None:
                    self._actions[trial_id] = actions
                    self._learn()
                    return values
                # A configuration tried before: the policy still learns from
                # the draw, with the reward that configuration got, so drawing
                # only unseen configurations does not bias what it learns.
                key, read = match
                if key in self._rewards:
                    # Credit only what its model read: where the draw matched it
                    # on those values alone, names the space gained since were
                    # no part of that model.
                    unread = (self._unread.get(key, ()) if read is None
                              else [name for name in values if name not in read])
                    self._observe(self._credit(actions, unread), self._rewards[key])
            self._learn()
            for heat in _TEMPERED_DRAWS:
                values, _ = self._sample(heat)
                if not self.is_duplicate(values):
                    self._actions[trial_id] = None  # not the policy's own draw
                    return values
        self._actions[trial_id] = None
        return self.random_unique()

    def _steps(self, actions: List[List[Any]]) -> List[Step]:
        decisions = self.policy.decisions
        return [(decisions.index(name), int(token), *rest) for name, token, *rest in actions]

    @staticmethod
    def _credit(actions: Optional[List[List[Any]]], unread) -> Optional[List[List[Any]]]:
        """``actions`` with a credit of 0 on each decision whose value the
        trial's model did not read (``unread``: names), so the reward moves only
        the decisions that made the model. A head ``name#n`` (see `_head`) is
        the decision of ``name``."""
        if actions is None or not unread:
            return actions
        return [
            [head, token, 0] if head.rsplit("#", 1)[0] in unread or head in unread
            else [head, token]
            for head, token, *_ in actions
        ]

    # -------------------------------------------------------------- results
    def _normalise(self, reward: float) -> float:
        if self.reward_normalization == "none":
            return reward
        if self.reward_normalization == "rank":
            return self._rank_normalise(reward)
        count, mean, m2 = self._reward_stats
        if count == 0:  # (a failure's reward) no reward yet to compare it with
            return 0.0
        std = math.sqrt(m2 / count)
        if std > 0:
            return (reward - mean) / std
        # No spread to scale by yet (one reward, or equal ones): the sign of the
        # difference (a unit step, as a z-score is), so a `failed_trial_reward`
        # below them still teaches the policy to avoid the failure (0 would make
        # it a success's equal) without a step in the reward's own units.
        return float(np.sign(reward - mean))

    def _rank_normalise(self, reward: float) -> float:
        """Centred rank among the rewards seen (ties share theirs), scaled to unit
        variance: in [-sqrt(3), sqrt(3)], whatever the rewards' scale or outliers."""
        seen = self._reward_sorted
        if not seen:
            return 0.0
        rank = (bisect.bisect_left(seen, reward) + bisect.bisect_right(seen, reward)) / 2
        return (rank / len(seen) - 0.5) * math.sqrt(12.0)

    def on_trial_result(self, trial) -> None:
        actions = self._actions.pop(trial.trial_id, None)
        reward = self._reward(trial)
        if reward is None:  # a failure, with no reward yet to compare it with
            return
        key = self.codec.hash(self.trial_values(trial.trial_id))
        self._rewards[key] = reward
        unread = self.unused_names(trial.trial_id)
        if unread:
            self._unread[key] = sorted(unread)
        self._observe(self._credit(actions, unread), reward)
        self._learn()

    def _reward(self, trial) -> Optional[float]:
        """The raw reward of a finished trial (updates the reward statistics)."""
        fitness = self.fitness(trial)
        if fitness == -math.inf:
            reward = (
                self.failed_trial_reward
                if self.failed_trial_reward is not None
                else self._worst_reward
            )
        else:
            reward = fitness
            count, mean, m2 = self._reward_stats
            count += 1
            delta = reward - mean
            mean += delta / count
            self._reward_stats = [count, mean, m2 + delta * (reward - mean)]
            bisect.insort(self._reward_sorted, reward)
            self._worst_reward = min(reward, self._worst_reward if self._worst_reward is not None else reward)
        return reward

    def _observe(self, actions: Optional[List[List[Any]]], reward: float) -> None:
        """Moves the baseline; queues the sampled actions (if any) with their advantage."""
        reward = float(np.clip(self._normalise(reward), -_MAX_REWARD, _MAX_REWARD))
        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        if actions is not None:
            self._pending.append([actions, advantage])

    def _learn(self) -> None:
        """One policy update on every queued sample, once ``batch_size`` are queued."""
        if len(self._pending) < self.batch_size:
            return
        batch, self._pending = self._pending, []
        steps = [self._steps(actions) for actions, _ in batch]
        advantages = np.array([a for _, a in batch], dtype=float)
        largest = float(np.max(np.abs(advantages)))
        if largest > _MAX_ADVANTAGE:
            advantages *= _MAX_ADVANTAGE / largest
        done = self.policy.update(steps, list(advantages))
        if done is None:  # not finite: skipped (the last loss is the last step's)
            return
        self.last_loss, self.last_entropy = done
        self.updates += 1
        self._policy_blob = None

    def strategy_diagnostics(self) -> Dict[str, float]:
        """Policy entropy, baseline, last loss, and each decision's probabilities.

        The probabilities are those of the most likely configuration's path
        (each decision takes its most likely choice, in order); ``policy/entropy``
        is the summed entropy of the decisions along that path, and
        ``policy/mode_prob`` that path's probability. A decision the controller
        has not sampled yet has no head and no probabilities (it takes its first
        value on the path); before its first sample (during the random initial
        points) there are none, and neither entropy nor ``mode_prob``.
        """
        out = {**super().strategy_diagnostics(), "policy/updates": float(self.updates)}
        if self.baseline is not None:
            out["policy/baseline"] = float(self.baseline)
        if self.last_loss is not None:
            out["policy/last_loss"] = float(self.last_loss)
        codec, policy = self.codec, self.policy
        values: Config = {}
        state = policy.initial_state()
        entropy = logp = 0.0
        decided = 0
        for hp in codec.space:
            if hp.name in values or not all(c.is_active(values) for c in hp.conditions):
                continue
            head = self._head(hp, codec.num_tokens(hp))
            if codec.cardinality(hp) == 1 or head not in policy.decisions:
                values[hp.name] = codec.from_token(hp, 0)  # (not sampled yet: no head)
                continue
            decided += 1
            j = policy.decisions.index(head)
            probs, lstm = policy.probabilities(state, j)
            for token, p in enumerate(probs):  # (a bucket: named by its centre)
                name = f"policy/prob/{hp.name}/{codec.from_token(hp, token)}"
                out[name] = out.get(name, 0.0) + float(p)  # buckets that share a centre
            token = int(np.argmax(probs))
            entropy -= float(np.sum(probs * np.log(np.maximum(probs, 1e-300))))
            logp += float(np.log(probs[token]))
            values[hp.name] = codec.from_token(hp, token)
            state = policy.advance(lstm, j, token)
        if decided:
            out["policy/entropy"] = entropy
            out["policy/mode_prob"] = math.exp(logp)
        return out

    # ---------------------------------------------------------------- state
    def get_state(self) -> Dict[str, Any]:
        state = super().get_state()
        decisions = tuple(self.policy.decisions)
        if self._policy_blob is None or self._policy_blob[0] != decisions:
            self._policy_blob = (decisions, self.policy.to_base64())
        state["rl"] = {
            "policy": self._policy_blob[1],
            "decisions": [[n, s] for n, s in zip(self.policy.decisions, self.policy.sizes)],
            "adam_step": self.policy.adam_step,
            "actions": dict(self._actions),
            "pending": [[a, float(adv)] for a, adv in self._pending],
            "rewards": dict(self._rewards),
            "unread": {k: list(v) for k, v in self._unread.items()},
            "baseline": self.baseline,
            "reward_stats": list(self._reward_stats),
            "reward_sorted": list(self._reward_sorted),
            "worst_reward": self._worst_reward,
            "updates": self.updates,
            "last_loss": self.last_loss,
            "last_entropy": self.last_entropy,
        }
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        try:
            rl = state["rl"]
            policy = self._new_policy()
            policy.from_base64(
                rl["policy"], [(str(n), int(s)) for n, s in rl["decisions"]], int(rl["adam_step"])
            )
            self._actions = {str(k): v for k, v in rl["actions"].items()}
            self._pending = [[list(a), float(adv)] for a, adv in rl["pending"]]
            self._rewards = {str(k): float(v) for k, v in rl["rewards"].items()}
            # Absent from the state of a search saved before credits existed.
            self._unread = {str(k): [str(n) for n in v]
                            for k, v in rl.get("unread", {}).items()}
            self.baseline = None if rl["baseline"] is None else float(rl["baseline"])
            count, mean, m2 = rl["reward_stats"]
            self._reward_stats = [int(count), float(mean), float(m2)]
            # Absent before "rank": the rewards of the completed trials then.
            saved = rl.get("reward_sorted")
            if saved is None:
                saved = [f for f in (self.fitness(t) for t in self.trials.values()
                                     if t.status == TrialStatus.COMPLETED) if math.isfinite(f)]
            self._reward_sorted = sorted(float(v) for v in saved)
            self._worst_reward = rl["worst_reward"]
            self.updates = int(rl["updates"])
            self.last_loss = rl["last_loss"]
            self.last_entropy = rl["last_entropy"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"RLControllerOracle state has a missing or bad 'rl' entry ({error}); "
                "expected the state written by RLControllerOracle."
            ) from error
        self.policy = policy
        self._policy_blob = (tuple(policy.decisions), rl["policy"])
