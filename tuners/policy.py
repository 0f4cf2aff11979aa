"""The RL controller's policy: a Keras LSTM that writes a configuration decision by decision.

The policy follows the controller of Zoph & Le ("Neural Architecture Search
with Reinforcement Learning", ICLR 2017) as simplified by ENAS (Pham et al.,
"Efficient Neural Architecture Search via Parameter Sharing", ICML 2018): at
each step an LSTM reads the embedding of the previous decision's token and a
softmax head of the current decision reads the LSTM's output. Every decision
(a keras-tuner hyperparameter) has its own head and its own token embedding,
created the first time the decision is seen, so a space that grows mid-search
adds heads and keeps what the old ones learnt.

Tokens form one shared vocabulary: id 0 is the start token, and the tokens of
the ``j``-th decision (the codec's ``to_token`` indices ``0..n_j-1``) follow
those of the decisions before it. A batch of sequences of any lengths is then
one padded tensor, and the REINFORCE gradient is one compiled `tf.function`
that loops over the decisions and reads the embeddings and heads as tensors of
any size. It belongs to a *template* — the Keras LSTM cells of one hidden size
and depth — shared by every policy of that size in the process: a policy keeps
its weights and Adam slots as numpy arrays and passes them in, so a new oracle
(the meta-layer makes many) or a space that grows mid-search reuses the one
trace instead of paying a new one. Adam's step runs in numpy on the returned
gradient.

Sampling runs a numpy copy of the same forward pass (the Keras `LSTMCell`
equations, checked against Keras in the tests), so proposing a trial costs no
TensorFlow call and draws only from the caller's numpy ``Generator``.
"""

from __future__ import annotations

import base64
import io
import threading
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import keras
import tensorflow as tf

__all__ = ["ControllerPolicy", "Step"]

#: One decision of a sampled sequence: (decision index, token), or (decision
#: index, token, credit): a credit of 0 keeps the step in the sequence (the
#: LSTM still reads its token) but out of the policy gradient.
Step = Union[Tuple[int, int], Tuple[int, int, float]]

#: ENAS initialises every controller weight uniformly in [-0.1, 0.1].
INIT_SCALE = 0.1
_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPSILON = 0.9, 0.999, 1e-7
#: Keras initializers without a seed draw one from Python's global `random`;
#: the weights are set from the policy's own seed, so build them with zeros.
_NO_DRAW = dict(
    kernel_initializer="zeros", recurrent_initializer="zeros", unit_forget_bias=False
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)




def _variable_names(num_layers: int, num_decisions: int) -> List[str]:
    """Every weight of a policy by a stable name (its role), in a fixed order."""
    names = []
    for layer in range(num_layers):
        names += [f"lstm_{layer}/kernel", f"lstm_{layer}/recurrent_kernel", f"lstm_{layer}/bias"]
    names.append("start/embeddings")
    for j in range(num_decisions):
        names += [f"decision_{j}/embeddings", f"decision_{j}/kernel", f"decision_{j}/bias"]
    return names


def _variable_shapes(units: int, num_layers: int, sizes: Sequence[int]) -> Dict[str, tuple]:
    shapes = {}
    for layer in range(num_layers):
        shapes[f"lstm_{layer}/kernel"] = (units, 4 * units)
        shapes[f"lstm_{layer}/recurrent_kernel"] = (units, 4 * units)
        shapes[f"lstm_{layer}/bias"] = (4 * units,)
    shapes["start/embeddings"] = (1, units)
    for j, n in enumerate(sizes):
        shapes[f"decision_{j}/embeddings"] = (n, units)
        shapes[f"decision_{j}/kernel"] = (units, n)
        shapes[f"decision_{j}/bias"] = (n,)
    return shapes


class _Template:
    """The Keras LSTM cells of one (hidden size, layers) and the compiled REINFORCE pass.

    Shared by every policy with that hidden size and depth (see `_template`),
    whatever its decisions: the token embeddings and the softmax heads enter
    the compiled functions as tensors of any size, and the decisions are a
    loop over time, so one trace serves every space, batch and sequence length
    (a growing space or a new oracle pays no new trace). Calls are serialised
    by a lock because they load a policy's LSTM weights into the cells.
    """

    def __init__(self, units: int, num_layers: int) -> None:
        self.units = units
        self.cells = []
        for layer in range(num_layers):
            cell = keras.layers.LSTMCell(units, name=f"lstm_{layer}", **_NO_DRAW)
            cell.build((None, units))
            self.cells.append(cell)
        variables = []
        for cell in self.cells:
            variables += [cell.kernel, cell.recurrent_kernel, cell.bias]
        self.variables = [v.value for v in variables]  # the backing tf.Variables
        self.lock = threading.Lock()
        spec = tf.TensorSpec
        inputs = [
            spec([None], tf.float32),  # the LSTM weights, flat
            spec([None, units], tf.float32),  # token embeddings (start first)
            spec([units, None], tf.float32),  # every head's kernel, side by side
            spec([None], tf.float32),  # every head's bias
            spec([None, None], tf.int32),  # prev: the token read at each step
            spec([None, None], tf.int32),  # action: the head output taken
            spec([None, None, None], tf.bool),  # valid: the step's head outputs
            spec([None, None], tf.float32),  # mask: the step's credit
            spec([], tf.float32),  # temperature
            spec([], tf.float32),  # tanh_constant (0: none)
        ]
        self.log_prob = tf.function(self._log_prob, input_signature=inputs)
        self.gradient = tf.function(
            self._gradient,
            input_signature=inputs + [spec([None], tf.float32), spec([], tf.float32)],
        )

    def _forward(self, table, kernel, bias, prev, action, valid, mask, temperature, tanh_constant):
        """Per-sequence log-probability and entropy of a padded batch of actions.

        The tokens read are known in advance (the actions taken), so only the
        LSTM's recurrence loops over the decisions; every head runs at once.
        """
        zeros = tf.zeros((tf.shape(prev)[0], self.units))

        def step(states, x):
            new = []
            for cell, (h, c) in zip(self.cells, states):
                x, (h, c) = cell(x, [h, c])
                new.append((h, c))
            return tuple(new)

        inputs = tf.gather(table, tf.transpose(prev))  # time major: (steps, batch, units)
        states = tf.scan(step, inputs, initializer=tuple((zeros, zeros) for _ in self.cells))
        outputs = tf.transpose(states[-1][0], [1, 0, 2])  # the top layer's h: (batch, steps, units)
        logits = (tf.einsum("btu,uv->btv", outputs, kernel) + bias) / temperature
        logits = tf.where(tanh_constant > 0, tanh_constant * tf.tanh(logits), logits)
        logits = tf.where(valid, logits, tf.fill(tf.shape(logits), -1e9))
        log_probs = tf.nn.log_softmax(logits)
        probs = tf.exp(log_probs) * tf.cast(valid, tf.float32)
        # ``mask``: the step's credit (0 for padding, and for a decision the
        # trial's model never read); the entropy bonus counts every real step.
        logp = tf.gather(log_probs, action, batch_dims=2) * mask
        real = tf.cast(tf.reduce_any(valid, 2), tf.float32)
        entropy = -tf.reduce_sum(probs * log_probs, 2) * real
        return tf.reduce_sum(logp, 1), tf.reduce_sum(entropy, 1)

    def _load(self, flat) -> None:
        """Assigns the LSTM cells' weights (in order, row-major) from a flat vector."""
        sizes = [int(np.prod(v.shape)) for v in self.variables]
        for variable, piece in zip(self.variables, tf.split(flat, sizes)):
            variable.assign(tf.reshape(piece, variable.shape))

    def _log_prob(self, lstm, table, kernel, bias, *batch):
        self._load(lstm)
        return self._forward(table, kernel, bias, *batch)

    def _gradient(self, lstm, table, kernel, bias, prev, action, valid, mask, temperature,
                  tanh_constant, advantage, entropy_weight):
        """The REINFORCE loss, mean entropy and the loss's gradient, LSTM weights flat."""
        self._load(lstm)
        with tf.GradientTape() as tape:
            tape.watch([table, kernel, bias])
            logp, entropy = self._forward(
                table, kernel, bias, prev, action, valid, mask, temperature, tanh_constant
            )
            count = tf.cast(tf.shape(prev)[0], tf.float32)
            loss = -(tf.reduce_sum(advantage * logp)
                     + entropy_weight * tf.reduce_sum(entropy)) / count
        grads = tape.gradient(loss, self.variables + [table, kernel, bias])
        grads = [tf.zeros_like(w) if g is None else tf.convert_to_tensor(g)
                 for g, w in zip(grads, self.variables + [table, kernel, bias])]
        lstm_grad = tf.concat([tf.reshape(g, [-1]) for g in grads[: len(self.variables)]], 0)
        return loss, tf.reduce_sum(entropy) / count, lstm_grad, *grads[len(self.variables):]


_TEMPLATES: Dict[tuple, _Template] = {}
_TEMPLATES_LOCK = threading.Lock()


def _template(units: int, num_layers: int) -> _Template:
    key = (units, num_layers)
    with _TEMPLATES_LOCK:
        if key not in _TEMPLATES:
            _TEMPLATES[key] = _Template(units, num_layers)
        return _TEMPLATES[key]


class ControllerPolicy:
    """An LSTM controller over a growing list of decisions, trained by REINFORCE.

    Args:
        units: Hidden size of each LSTM layer, and the token embedding size.
        num_layers: Stacked `keras.layers.LSTMCell` layers.
        seed: Seed of the initial weights (every head's too): equal seeds give
            equal policies.
        temperature: Logits are divided by it before sampling (> 0).
        tanh_constant: If set, logits become ``tanh_constant * tanh(logits)``
            (ENAS), which bounds them and keeps the policy exploring.
        learning_rate: Adam's step size.
        entropy_weight: Weight of the entropy bonus in the loss.
        clip_norm: Global-norm gradient clipping; None disables it.
    """

    def __init__(
        self,
        *,
        units: int = 64,
        num_layers: int = 1,
        seed: int = 0,
        temperature: float = 1.0,
        tanh_constant: Optional[float] = 2.5,
        learning_rate: float = 5e-3,
        entropy_weight: float = 1e-4,
        clip_norm: Optional[float] = 5.0,
    ) -> None:
        self.units = units
        self.num_layers = num_layers
        self.seed = int(seed)
        self.temperature = float(temperature)
        self.tanh_constant = None if tanh_constant is None else float(tanh_constant)
        self.learning_rate = float(learning_rate)
        self.entropy_weight = float(entropy_weight)
        self.clip_norm = None if clip_norm is None else float(clip_norm)
        self.decisions: List[str] = []
        self.sizes: List[int] = []
        self.adam_step = 0
        # The parameters, float32, rows: weights, Adam's m, Adam's v; columns:
        # every variable flattened, in `_variable_names` order (new heads last).
        self.params = np.zeros((3, 0), dtype="float32")
        self._numpy: Optional[Dict[str, np.ndarray]] = None
        self._positions: Optional[Tuple[np.ndarray, ...]] = None
        self._init_weights(_variable_names(num_layers, 0), salt=0)

    # ------------------------------------------------------------ structure
    def _init_weights(self, names: Sequence[str], salt: int) -> None:
        rng = np.random.default_rng([self.seed, salt])
        shapes = _variable_shapes(self.units, self.num_layers, self.sizes)
        new = [rng.uniform(-INIT_SCALE, INIT_SCALE, shapes[n]).ravel() for n in names]
        block = np.zeros((3, sum(len(w) for w in new)), dtype="float32")
        block[0] = np.concatenate(new)
        self.params = np.concatenate([self.params, block], axis=1)
        self._numpy = self._positions = None

    def index(self, name: str, num_tokens: int) -> int:
        """The index of decision ``name``, adding its head and embedding if new."""
        if name in self.decisions:
            j = self.decisions.index(name)
            if self.sizes[j] != num_tokens:
                raise ValueError(
                    f"decision {name!r} has {num_tokens} tokens now but its policy "
                    f"head has {self.sizes[j]}; a hyperparameter cannot change its values."
                )
            return j
        j = len(self.decisions)
        self.decisions.append(name)
        self.sizes.append(int(num_tokens))
        self._init_weights(
            [f"decision_{j}/embeddings", f"decision_{j}/kernel", f"decision_{j}/bias"],
            salt=j + 1,
        )
        return j

    def offset(self, j: int) -> int:
        """Id of token 0 of decision ``j`` in the shared vocabulary (0 is start)."""
        return 1 + sum(self.sizes[:j])

    @property
    def template(self) -> _Template:
        """The Keras LSTM cells and compiled passes of this policy's size and depth."""
        return _template(self.units, self.num_layers)

    def _layout(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where the compiled passes' inputs sit in a row of `params`.

        Indices of the LSTM weights (flat), of the token embedding table (start
        token first, then each decision's tokens), and of every head's kernel
        and bias side by side, in the shared vocabulary's order.
        """
        if self._positions is None:
            shapes = _variable_shapes(self.units, self.num_layers, self.sizes)
            at, start = {}, 0
            for name in self._names():
                size = int(np.prod(shapes[name]))
                at[name] = np.arange(start, start + size).reshape(shapes[name])
                start += size
            heads = [f"decision_{j}" for j in range(len(self.decisions))]
            lstm = [at[n].ravel() for n in at if n.startswith("lstm_")]
            self._positions = (
                np.concatenate(lstm),
                np.concatenate([at["start/embeddings"]] + [at[h + "/embeddings"] for h in heads]),
                np.concatenate([at[h + "/kernel"] for h in heads], axis=1),
                np.concatenate([at[h + "/bias"] for h in heads]),
            )
        return self._positions

    def _inputs(self) -> List[tf.Tensor]:
        """The weights the compiled passes read: LSTM (flat), embeddings, kernels, biases."""
        return [tf.constant(self.params[0][at]) for at in self._layout()]

    # ------------------------------------------------------- numpy forward
    def _weights(self) -> Dict[str, np.ndarray]:
        if self._numpy is None:
            flat = self.params[0].astype(np.float64)
            shapes = _variable_shapes(self.units, self.num_layers, self.sizes)
            self._numpy, start = {}, 0
            for name in self._names():
                size = int(np.prod(shapes[name]))
                self._numpy[name] = flat[start : start + size].reshape(shapes[name])
                start += size
        return self._numpy

    def initial_state(self) -> Tuple[List[np.ndarray], List[np.ndarray], np.ndarray]:
        """(hidden states, cell states, input) before the first decision."""
        w = self._weights()
        zeros = [np.zeros(self.units) for _ in range(self.num_layers)]
        return zeros, list(zeros), w["start/embeddings"][0]

    def probabilities(self, state, j: int, heat: float = 1.0):
        """Steps the LSTM; returns decision ``j``'s choice probabilities and the new LSTM state.

        Same equations as `keras.layers.LSTMCell` (gates i, f, c, o; sigmoid
        and tanh), in float64. ``heat`` multiplies the temperature.
        """
        w = self._weights()
        hs, cs, x = state
        u = self.units
        new_h, new_c = [], []
        for layer in range(self.num_layers):
            z = (
                x @ w[f"lstm_{layer}/kernel"]
                + hs[layer] @ w[f"lstm_{layer}/recurrent_kernel"]
                + w[f"lstm_{layer}/bias"]
            )
            gates = _sigmoid(z)  # i, f, (unused), o
            c = gates[u : 2 * u] * cs[layer] + gates[:u] * np.tanh(z[2 * u : 3 * u])
            x = gates[3 * u :] * np.tanh(c)
            new_h.append(x)
            new_c.append(c)
        logits = (x @ w[f"decision_{j}/kernel"] + w[f"decision_{j}/bias"]) / (
            self.temperature * heat
        )
        if self.tanh_constant is not None:
            logits = self.tanh_constant * np.tanh(logits)
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        return probs, (new_h, new_c)

    def advance(self, lstm_state, j: int, token: int):
        """The state after decision ``j`` took ``token``: its embedding is the next input."""
        hs, cs = lstm_state
        return hs, cs, self._weights()[f"decision_{j}/embeddings"][token]

    def log_prob(self, steps: Sequence[Step]) -> Tuple[float, float]:
        """(log-probability, summed entropy) of a sequence, by the numpy forward pass."""
        state = self.initial_state()
        logp = entropy = 0.0
        for j, token, *_ in steps:
            probs, lstm = self.probabilities(state, j)
            logp += float(np.log(probs[token]))
            entropy -= float(np.sum(probs * np.log(np.maximum(probs, 1e-300))))
            state = self.advance(lstm, j, token)
        return logp, entropy

    # ------------------------------------------------------------ learning
    def _batch_arrays(self, batch: Sequence[Sequence[Step]]):
        steps = max(1, len(self.decisions))
        vocab = self.offset(len(self.decisions))
        prev = np.zeros((len(batch), steps), dtype="int32")
        action = np.zeros((len(batch), steps), dtype="int32")
        valid = np.zeros((len(batch), steps, vocab - 1), dtype=bool)
        mask = np.zeros((len(batch), steps), dtype="float32")
        for b, sequence in enumerate(batch):
            last = 0
            for t, step in enumerate(sequence):
                j, token = step[0], step[1]
                start = self.offset(j)
                prev[b, t] = last
                action[b, t] = start + token - 1  # head outputs skip the start id
                valid[b, t, start - 1 : start - 1 + self.sizes[j]] = True
                mask[b, t] = step[2] if len(step) > 2 else 1.0
                last = start + token
        return [tf.constant(a) for a in (prev, action, valid, mask)] + [
            tf.constant(self.temperature, tf.float32),
            tf.constant(self.tanh_constant or 0.0, tf.float32),
        ]

    def _names(self) -> List[str]:
        return _variable_names(self.num_layers, len(self.decisions))

    def keras_log_prob(self, batch: Sequence[Sequence[Step]]) -> np.ndarray:
        """Log-probabilities of sequences computed by the Keras layers (float32)."""
        template = self.template
        with template.lock:
            logp, _ = template.log_prob(*self._inputs(), *self._batch_arrays(batch))
        return logp.numpy()

    def update(self, batch: Sequence[Sequence[Step]],
               advantages: Sequence[float]) -> Optional[Tuple[float, float]]:
        """One REINFORCE step (Adam, Kingma & Ba 2015) on ``batch``.

        Minimises ``-mean(A * log pi(a)) - entropy_weight * mean(H)``, with
        ``A`` the advantages and ``log pi(a)`` summed over the credited steps
        (see `Step`); the gradient is clipped to `clip_norm` by global norm.
        Returns (loss, mean entropy) before the step; None when the gradient is
        not finite: the step is skipped, with a `RuntimeWarning`, and the policy
        is unchanged.
        """
        if not self.decisions or not batch:
            return 0.0, 0.0
        template = self.template
        with template.lock:
            loss, entropy, *pieces = template.gradient(
                *self._inputs(),
                *self._batch_arrays(batch),
                tf.constant(np.asarray(advantages, dtype="float32")),
                tf.constant(self.entropy_weight, tf.float32),
            )
        grad = np.zeros(self.params.shape[1], dtype="float32")
        for at, piece in zip(self._layout(), pieces):
            grad[at] = piece.numpy()
        norm = float(np.sqrt(np.sum(np.square(grad, dtype="float64"))))
        if not np.isfinite(norm):
            # An overflow somewhere: one step would make every weight NaN (Adam's
            # moments carry it on for good). The policy keeps what it had learnt.
            warnings.warn(f"the RL controller's policy gradient is not finite ({norm}); "
                          "this update is skipped and the policy kept as it was",
                          RuntimeWarning, stacklevel=3)
            return None
        if self.clip_norm is not None and norm > self.clip_norm:
            grad *= np.float32(self.clip_norm / norm)
        self.adam_step += 1
        t = np.float32(self.adam_step)
        one = np.float32(1.0)
        beta1, beta2 = np.float32(_ADAM_BETA1), np.float32(_ADAM_BETA2)
        scale = np.float32(self.learning_rate) * np.sqrt(one - beta2**t) / (one - beta1**t)
        weights, m, v = self.params
        m = beta1 * m + (one - beta1) * grad
        v = beta2 * v + (one - beta2) * np.square(grad)
        weights = weights - scale * m / (np.sqrt(v) + np.float32(_ADAM_EPSILON))
        self.params = np.stack([weights, m, v]).astype("float32", copy=False)
        self._numpy = None
        return float(loss), float(entropy)

    # ---------------------------------------------------------------- state
    def to_base64(self) -> str:
        """Weights and Adam slots as base64 of an (uncompressed) ``np.savez`` archive.

        The archive holds three flat float32 arrays, ``weights``, ``adam_m`` and
        ``adam_v``: every variable flattened in `_variable_names` order.
        """
        buffer = io.BytesIO()
        np.savez(buffer, weights=self.params[0], adam_m=self.params[1], adam_v=self.params[2])
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def from_base64(self, text: str, decisions: Sequence[Tuple[str, int]], adam_step: int) -> None:
        """Restores what `to_base64` wrote, for the decisions listed (in order)."""
        for name, size in decisions:
            self.index(name, size)
        if list(self.decisions) != [name for name, _ in decisions]:
            raise ValueError(
                f"policy state lists decisions {[n for n, _ in decisions]} but the "
                f"policy already has {self.decisions}."
            )
        with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as archive:
            params = np.stack(
                [np.asarray(archive[k], dtype="float32") for k in ("weights", "adam_m", "adam_v")]
            )
        if params.shape != self.params.shape:
            raise ValueError(
                f"the policy state holds {params.shape[1]} parameters, expected "
                f"{self.params.shape[1]} (units or num_layers differ?)."
            )
        self.params = params
        self.adam_step = int(adam_step)
        self._numpy = None
