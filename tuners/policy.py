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
one padded tensor, and the REINFORCE step is one compiled `tf.function` whose
trace depends only on the batch size and the set of decisions.

Sampling runs a numpy copy of the same forward pass (the Keras `LSTMCell`
equations, checked against Keras in the tests), so proposing a trial costs no
TensorFlow call and draws only from the caller's numpy ``Generator``.
"""

from __future__ import annotations

import base64
import io
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import keras
import tensorflow as tf

__all__ = ["ControllerPolicy", "Step"]

#: One decision of a sampled sequence: (decision index, token).
Step = Tuple[int, int]

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
        self.cells = []
        for layer in range(num_layers):
            cell = keras.layers.LSTMCell(units, name=f"lstm_{layer}", **_NO_DRAW)
            cell.build((None, units))
            self.cells.append(cell)
        self.start = keras.layers.Embedding(1, units, name="start", embeddings_initializer="zeros")
        self.start.build((None,))
        self.decisions: List[str] = []
        self.sizes: List[int] = []
        self.embeddings: List[keras.layers.Embedding] = []
        self.heads: List[keras.layers.Dense] = []
        self._init_weights(self._named_variables(), salt=0)
        self.adam_step = 0
        self._slots: Dict[str, Tuple[tf.Variable, tf.Variable]] = {}
        self._steps: Dict[int, object] = {}
        self._numpy: Optional[Dict[str, np.ndarray]] = None
        self._snapshot: Optional[Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]] = None

    # ------------------------------------------------------------ structure
    def _named_variables(self) -> Dict[str, tf.Variable]:
        """Every weight by a stable name (its role), in a fixed order."""
        out = {}
        for layer, cell in enumerate(self.cells):
            out[f"lstm_{layer}/kernel"] = cell.kernel
            out[f"lstm_{layer}/recurrent_kernel"] = cell.recurrent_kernel
            out[f"lstm_{layer}/bias"] = cell.bias
        out["start/embeddings"] = self.start.embeddings
        for j in range(len(self.decisions)):
            out.update(self._decision_variables(j))
        return out

    def _decision_variables(self, j: int) -> Dict[str, tf.Variable]:
        return {
            f"decision_{j}/embeddings": self.embeddings[j].embeddings,
            f"decision_{j}/kernel": self.heads[j].kernel,
            f"decision_{j}/bias": self.heads[j].bias,
        }

    def _init_weights(self, variables: Dict[str, tf.Variable], salt: int) -> None:
        rng = np.random.default_rng([self.seed, salt])
        for variable in variables.values():
            shape = tuple(variable.shape)
            variable.assign(rng.uniform(-INIT_SCALE, INIT_SCALE, shape).astype("float32"))

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
        embedding = keras.layers.Embedding(
            num_tokens, self.units, name=f"embedding_{j}", embeddings_initializer="zeros"
        )
        embedding.build((None,))
        head = keras.layers.Dense(num_tokens, name=f"head_{j}", kernel_initializer="zeros")
        head.build((None, self.units))
        self.decisions.append(name)
        self.sizes.append(int(num_tokens))
        self.embeddings.append(embedding)
        self.heads.append(head)
        self._init_weights(self._decision_variables(j), salt=j + 1)
        self._numpy = self._snapshot = None
        return j

    def offset(self, j: int) -> int:
        """Id of token 0 of decision ``j`` in the shared vocabulary (0 is start)."""
        return 1 + sum(self.sizes[:j])

    # ------------------------------------------------------- numpy forward
    def _weights(self) -> Dict[str, np.ndarray]:
        if self._numpy is None:
            self._numpy = {
                k: np.asarray(v.numpy(), dtype=np.float64)
                for k, v in self._named_variables().items()
            }
        return self._numpy

    def initial_state(self) -> Tuple[List[np.ndarray], List[np.ndarray], np.ndarray]:
        """(hidden states, cell states, input) before the first decision."""
        w = self._weights()
        zeros = [np.zeros(self.units) for _ in self.cells]
        return zeros, list(zeros), w["start/embeddings"][0]

    def probabilities(self, state, j: int):
        """Steps the LSTM; returns decision ``j``'s choice probabilities and the new LSTM state.

        Same equations as `keras.layers.LSTMCell` (gates i, f, c, o; sigmoid
        and tanh), in float64.
        """
        w = self._weights()
        hs, cs, x = state
        new_h, new_c = [], []
        for layer in range(len(self.cells)):
            z = (
                x @ w[f"lstm_{layer}/kernel"]
                + hs[layer] @ w[f"lstm_{layer}/recurrent_kernel"]
                + w[f"lstm_{layer}/bias"]
            )
            zi, zf, zc, zo = np.split(z, 4)
            c = _sigmoid(zf) * cs[layer] + _sigmoid(zi) * np.tanh(zc)
            x = _sigmoid(zo) * np.tanh(c)
            new_h.append(x)
            new_c.append(c)
        logits = self._shape_logits_np(x @ w[f"decision_{j}/kernel"] + w[f"decision_{j}/bias"])
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        return probs, (new_h, new_c)

    def _shape_logits_np(self, logits: np.ndarray) -> np.ndarray:
        logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * np.tanh(logits)
        return logits

    def advance(self, lstm_state, j: int, token: int):
        """The state after decision ``j`` took ``token``: its embedding is the next input."""
        hs, cs = lstm_state
        return hs, cs, self._weights()[f"decision_{j}/embeddings"][token]

    def log_prob(self, steps: Sequence[Step]) -> Tuple[float, float]:
        """(log-probability, summed entropy) of a sequence under the current weights."""
        state = self.initial_state()
        logp = entropy = 0.0
        for j, token in steps:
            probs, lstm = self.probabilities(state, j)
            logp += float(np.log(probs[token]))
            entropy -= float(np.sum(probs * np.log(np.maximum(probs, 1e-300))))
            state = self.advance(lstm, j, token)
        return logp, entropy

    # ------------------------------------------------------------ learning
    def _slot(self, name: str, variable) -> Tuple[tf.Variable, tf.Variable]:
        if name not in self._slots:
            zeros = np.zeros(tuple(variable.shape), dtype="float32")
            self._slots[name] = (tf.Variable(zeros), tf.Variable(zeros))
        return self._slots[name]

    def _batch_arrays(self, batch: Sequence[Sequence[Step]]):
        steps = max(1, len(self.decisions))
        vocab = self.offset(len(self.decisions))
        prev = np.zeros((len(batch), steps), dtype="int32")
        action = np.zeros((len(batch), steps), dtype="int32")
        valid = np.zeros((len(batch), steps, vocab - 1), dtype=bool)
        mask = np.zeros((len(batch), steps), dtype="float32")
        for b, sequence in enumerate(batch):
            last = 0
            for t, (j, token) in enumerate(sequence):
                start = self.offset(j)
                prev[b, t] = last
                action[b, t] = start + token - 1  # head outputs skip the start id
                valid[b, t, start - 1 : start - 1 + self.sizes[j]] = True
                mask[b, t] = 1.0
                last = start + token
        return prev, action, valid, mask

    def _step_function(self, batch_size: int):
        key = (batch_size, len(self.decisions))
        if key in self._steps:
            return self._steps[key]
        names = list(self._named_variables())
        variables = [v.value for v in self._named_variables().values()]
        slots = [self._slot(n, v) for n, v in zip(names, variables)]
        cells, heads, embeddings, start = self.cells, list(self.heads), list(self.embeddings), self.start
        units = self.units
        shape = self._shape_logits_tf
        lr, clip, ent_w = self.learning_rate, self.clip_norm, self.entropy_weight

        @tf.function(reduce_retracing=False)
        def step(prev, action, valid, mask, advantage, adam_step):
            with tf.GradientTape() as tape:
                table = tf.concat([start.embeddings] + [e.embeddings for e in embeddings], 0)
                kernel = tf.concat([h.kernel for h in heads], 1)
                bias = tf.concat([h.bias for h in heads], 0)
                states = [
                    [tf.zeros((batch_size, units)), tf.zeros((batch_size, units))] for _ in cells
                ]
                logps, entropies = [], []
                for t in range(prev.shape[1]):
                    x = tf.gather(table, prev[:, t])
                    for layer, cell in enumerate(cells):
                        x, states[layer] = cell(x, states[layer])
                    logits = shape(tf.matmul(x, kernel) + bias)
                    logits = tf.where(valid[:, t], logits, tf.fill(tf.shape(logits), -1e9))
                    log_probs = tf.nn.log_softmax(logits)
                    probs = tf.exp(log_probs) * tf.cast(valid[:, t], tf.float32)
                    chosen = tf.gather(log_probs, action[:, t], batch_dims=1)
                    logps.append(chosen * mask[:, t])
                    entropies.append(-tf.reduce_sum(probs * log_probs, 1) * mask[:, t])
                logp = tf.add_n(logps)
                entropy = tf.add_n(entropies)
                loss = -tf.reduce_mean(advantage * logp) - ent_w * tf.reduce_mean(entropy)
            grads = tape.gradient(loss, variables)
            grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                     for g, v in zip(grads, variables)]
            if clip is not None:
                grads, _ = tf.clip_by_global_norm(grads, clip)
            t = tf.cast(adam_step, tf.float32)
            scale = lr * tf.sqrt(1.0 - _ADAM_BETA2**t) / (1.0 - _ADAM_BETA1**t)
            after = []
            for variable, grad, (m, v) in zip(variables, grads, slots):
                m_new = _ADAM_BETA1 * m + (1.0 - _ADAM_BETA1) * grad
                v_new = _ADAM_BETA2 * v + (1.0 - _ADAM_BETA2) * tf.square(grad)
                w_new = variable - scale * m_new / (tf.sqrt(v_new) + _ADAM_EPSILON)
                m.assign(m_new)
                v.assign(v_new)
                variable.assign(w_new)
                after.append((w_new, m_new, v_new))
            # The new values come back in the same call: reading each variable
            # from Python afterwards would cost more than the step itself.
            return loss, tf.reduce_mean(entropy), after

        self._steps = {key: step}  # older traces hold stale head lists
        return step

    def _shape_logits_tf(self, logits):
        logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * tf.tanh(logits)
        return logits

    def update(self, batch: Sequence[Sequence[Step]], advantages: Sequence[float]) -> Tuple[float, float]:
        """One REINFORCE step (Adam, Kingma & Ba 2015) on ``batch``.

        Minimises ``-mean(A * log pi(a)) - entropy_weight * mean(H)``, with
        ``A`` the advantages. Returns (loss, mean entropy) before the step.
        """
        if not self.decisions:
            return 0.0, 0.0
        prev, action, valid, mask = self._batch_arrays(batch)
        self.adam_step += 1
        step = self._step_function(len(batch))
        loss, entropy, after = step(
            tf.constant(prev), tf.constant(action), tf.constant(valid), tf.constant(mask),
            tf.constant(np.asarray(advantages, dtype="float32")),
            tf.constant(self.adam_step, dtype=tf.int32),
        )
        self._snapshot = {
            name: tuple(t.numpy() for t in values)
            for name, values in zip(self._named_variables(), after)
        }
        self._numpy = {name: w.astype(np.float64) for name, (w, _, _) in self._snapshot.items()}
        return float(loss), float(entropy)

    def _arrays(self) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(weights, Adam m, Adam v) of every variable, by name."""
        if self._snapshot is None or len(self._snapshot) != len(self._named_variables()):
            self._snapshot = {}
            for name, variable in self._named_variables().items():
                m, v = self._slot(name, variable)
                self._snapshot[name] = (np.asarray(variable.numpy()), m.numpy(), v.numpy())
        return self._snapshot

    # ---------------------------------------------------------------- state
    def to_base64(self) -> str:
        """Weights and Adam slots as base64 of an (uncompressed) ``np.savez`` archive."""
        arrays = {}
        for name, (w, m, v) in self._arrays().items():
            arrays[f"w/{name}"], arrays[f"m/{name}"], arrays[f"v/{name}"] = w, m, v
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
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
            for name, variable in self._named_variables().items():
                weights = archive[f"w/{name}"]
                if weights.shape != tuple(variable.shape):
                    raise ValueError(
                        f"policy weight {name} has shape {weights.shape} in the state, "
                        f"expected {tuple(variable.shape)} (units/num_layers differ?)."
                    )
                variable.assign(weights)
                m, v = self._slot(name, variable)
                m.assign(archive[f"m/{name}"])
                v.assign(archive[f"v/{name}"])
        self.adam_step = int(adam_step)
        self._numpy = self._snapshot = None
