"""The RL controller learns (and only from real rewards), grows, resumes, validates.

Synthetic objectives, no model training: the oracle is driven exactly as
keras-tuner drives it (see `conformance.drive`).
"""

import json
import math

import keras_tuner
import numpy as np
import pytest

from metanas.tuners import RLControllerOracle, RLControllerSearch, SearchSpaceCodec
from metanas.tuners.policy import ControllerPolicy
from tests.tuners.conformance import (
    MAX, MIN, TrialStatus, drive, finish, json_state, make, nas_space)

OPS = ["none", "skip", "conv1x1", "conv3x3", "avgpool"]
#: One best operation per edge, a different one on each.
BEST = {f"edge_{e}": OPS[(2 * e + 1) % 5] for e in range(6)}
UNIFORM = 5.0**-6  # probability of any one configuration under a uniform policy


def best_count(values):
    """The synthetic objective: how many edges hold their best operation."""
    return float(sum(values.get(name) == op for name, op in BEST.items()))


def factory(**kw):
    return RLControllerOracle(units=32, **kw)


def probability_of(oracle, values) -> float:
    """The policy's probability of writing ``values`` (numpy forward pass)."""
    codec = SearchSpaceCodec(oracle.hyperparameters)
    steps = [
        (oracle.policy.decisions.index(hp.name), codec.to_token(hp, values[hp.name]))
        for hp in codec.active_decisions(values)
    ]
    return math.exp(oracle.policy.log_prob(steps)[0])


def test_the_policy_learns_the_best_configuration(tmp_path):
    oracle = make(factory, tmp_path, max_trials=200, seed=2)
    seen = drive(oracle, best_count)
    assert probability_of(oracle, BEST) > 1000 * UNIFORM
    # Each decision's most likely choice is its best operation.
    diagnostics = oracle.strategy_diagnostics()
    for name, op in BEST.items():
        probs = {k.split("/")[-1]: v for k, v in diagnostics.items()
                 if k.startswith(f"policy/prob/{name}/")}
        assert max(probs, key=probs.get) == op, (name, probs)
    # And the search itself got better: late trials beat early ones.
    assert np.mean([best_count(v) for v in seen[-50:]]) > np.mean(
        [best_count(v) for v in seen[:50]]
    ) + 1.0


def test_with_shuffled_rewards_the_policy_does_not_learn(tmp_path):
    # Rewards with the same distribution, unrelated to the configuration.
    codec = SearchSpaceCodec(nas_space())
    rng = np.random.default_rng(0)
    oracle = make(factory, tmp_path, max_trials=200, seed=2)
    drive(oracle, lambda values: best_count(codec.sample(rng)))
    assert probability_of(oracle, BEST) < 10 * UNIFORM


def test_a_decision_that_always_fails_is_avoided(tmp_path):
    oracle = make(factory, tmp_path, max_trials=120, seed=3, max_consecutive_failed_trials=200)
    for _ in range(120):
        trial = oracle.create_trial("tuner0")
        values = dict(trial.hyperparameters.values)
        finish(oracle, trial, best_count(values), fail=values["edge_0"] == "none")
    probs = {k: v for k, v in oracle.strategy_diagnostics().items()
             if k.startswith("policy/prob/edge_0/")}
    assert probs["policy/prob/edge_0/none"] < 0.05, probs


@pytest.mark.parametrize("normalization, lowest", [("rank", -math.sqrt(3)), ("zscore", -1.0)])
def test_a_failed_trial_reward_below_equal_scores_is_avoided(tmp_path, normalization, lowest):
    # Every completed trial scores the same: the z-score had no spread to divide
    # by and made every reward 0, the failures' failed_trial_reward too, so the
    # policy never learnt to avoid them.
    oracle = make(lambda **kw: factory(failed_trial_reward=0.0,
                                       reward_normalization=normalization, **kw), tmp_path,
                  max_trials=80, seed=3, max_consecutive_failed_trials=200)
    for _ in range(80):
        trial = oracle.create_trial("tuner0")
        finish(oracle, trial, 1.0, fail=trial.hyperparameters.values["edge_0"] == "none")
    probs = oracle.strategy_diagnostics()
    assert probs["policy/prob/edge_0/none"] < 0.1, probs  # 0.2 is uniform
    assert oracle._normalise(0.0) == lowest and oracle._normalise(1.0) == 0.0
    assert oracle._normalise(-1e4) == lowest  # a bounded step, not one in the reward's units


def test_one_diverged_trial_does_not_stop_the_learning(tmp_path):
    # A loss of 1e12 (a diverged run) inflated the z-score's standard deviation for
    # the rest of the search: every later reward normalised to the same value, and
    # the policy learnt nothing more (a review's finding).
    oracle = make(factory, tmp_path, objective=MIN, max_trials=200, seed=2)
    seen = drive(oracle, lambda v: 1e12 if len(oracle.end_order) == 7 else 6 - best_count(v))
    assert probability_of(oracle, BEST) > 1000 * UNIFORM
    assert np.mean([best_count(v) for v in seen[-50:]]) > np.mean(
        [best_count(v) for v in seen[:50]]) + 1.0
    # Ranks: ordinary losses keep their spread beside it; the outlier is the worst.
    assert oracle._normalise(-1.0) - oracle._normalise(-5.0) > 1.0
    assert oracle._normalise(-1e12) == -math.sqrt(3) * (1 - 1 / len(oracle._reward_sorted))


@pytest.mark.parametrize("normalization", ["none", "zscore"])
def test_rewards_beyond_float32_leave_the_policy_finite(tmp_path, normalization):
    # failed_trial_reward=-1e20: the squared gradients overflowed float32, and every
    # weight of the policy became NaN (a review's finding).
    oracle = make(lambda **kw: factory(reward_normalization=normalization,
                                       failed_trial_reward=-1e20, num_initial_points=1, **kw),
                  tmp_path, max_trials=25, seed=1, max_consecutive_failed_trials=100)
    drive(oracle, best_count, fail=lambda i: i % 3 == 2)
    probs = [v for k, v in oracle.strategy_diagnostics().items() if k.startswith("policy/prob")]
    assert probs and all(math.isfinite(p) for p in probs)
    assert math.isfinite(oracle.last_loss)


def test_a_state_saved_before_ranks_ranks_against_its_completed_trials(tmp_path):
    # Was ranked against each configuration's last reward, failures' included.
    oracle = make(factory, tmp_path, max_trials=12, seed=1, max_consecutive_failed_trials=20)
    drive(oracle, best_count, trials=10, fail=lambda i: i % 4 == 3)
    state = json_state(oracle)
    del state["rl"]["reward_sorted"]
    resumed = make(factory, tmp_path, max_trials=12, seed=1)
    resumed.trials = oracle.trials
    resumed.set_state(state)
    assert resumed._reward_sorted == oracle._reward_sorted
    assert len(resumed._reward_sorted) == 8  # the 8 completed trials


def test_a_failed_trial_reward_far_below_the_rewards_is_bounded(tmp_path):
    # failed_trial_reward=0 for accuracies near 0.93 was a z-score of about -45:
    # one failure outweighed every success, and the baseline sank for ~100 trials.
    oracle = make(lambda **kw: factory(failed_trial_reward=0.0, **kw), tmp_path,
                  max_trials=200, seed=2, max_consecutive_failed_trials=200)
    rng = np.random.default_rng(0)
    seen = drive(oracle, lambda v: 0.9 + 0.01 * best_count(v), fail=lambda i: rng.random() < 0.1)
    assert oracle._normalise(0.0) == -math.sqrt(3)
    assert oracle.baseline > 0
    assert np.mean([best_count(v) for v in seen[-50:]]) > np.mean(
        [best_count(v) for v in seen[:50]]) + 1.0


def test_warm_up_is_initial_hps_then_random_then_the_policy(tmp_path):
    first = {name: "skip" for name in BEST}
    oracle = make(
        lambda **kw: RLControllerOracle(units=16, num_initial_points=4, initial_hps=[first], **kw),
        tmp_path, max_trials=10,
    )
    seen = drive(oracle, best_count, trials=4)
    assert seen[0] == first
    # Warm-up rewards set the baseline, but carry no policy gradient.
    assert oracle.updates == 0 and oracle.baseline is not None
    drive(oracle, best_count, trials=1)
    assert oracle.updates == 1


def test_numpy_sampling_pass_matches_the_keras_layers():
    policy = ControllerPolicy(units=8, num_layers=2, seed=4, temperature=2.0, tanh_constant=None)
    sizes = [3, 5, 2, 4]
    for j, n in enumerate(sizes):
        policy.index(f"d{j}", n)
    rng = np.random.default_rng(0)
    batch = [[(j, int(rng.integers(n))) for j, n in enumerate(sizes) if j != skip]
             for skip in (0, 2, 9)]  # conditional sequences skip decisions
    policy.update(batch, [1.0, -0.5, 0.25])
    keras_logp = policy.keras_log_prob(batch)
    numpy_logp = [policy.log_prob(steps)[0] for steps in batch]
    np.testing.assert_allclose(keras_logp, numpy_logp, rtol=1e-4, atol=1e-5)


def test_one_compiled_pass_serves_every_space_and_batch():
    # A space that grows mid-search (AutoKeras's does) used to pay a new
    # trace per size: minutes for a few dozen decisions.
    first = ControllerPolicy(units=10, seed=0)
    template = first.template
    rng = np.random.default_rng(0)
    for n in (2, 7, 3, 5):
        first.index(f"d{len(first.decisions)}", n)
        for rows in (1, 3, 4):
            batch = [[(j, int(rng.integers(k))) for j, k in enumerate(first.sizes)]
                     for _ in range(rows)]
            first.update(batch, list(rng.normal(size=rows)))
    other = ControllerPolicy(units=10, seed=1)
    other.index("e", 11)
    other.update([[(0, 4)]], [1.0])
    assert other.template is template
    assert template.gradient.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(
        other.keras_log_prob([[(0, 4)]]), [other.log_prob([(0, 4)])[0]], rtol=1e-4, atol=1e-5
    )


def test_policy_gradient_raises_the_probability_of_rewarded_actions():
    policy = ControllerPolicy(units=8, seed=0, learning_rate=0.05)
    policy.index("a", 4)
    policy.index("b", 3)
    good, bad = [(0, 1), (1, 2)], [(0, 3), (1, 0)]
    before = policy.log_prob(good)[0], policy.log_prob(bad)[0]
    for _ in range(10):
        policy.update([good, bad], [1.0, -1.0])
    assert policy.log_prob(good)[0] > before[0] + 1.0
    assert policy.log_prob(bad)[0] < before[1] - 1.0


def test_a_gradient_that_is_not_finite_leaves_the_policy_as_it_was():
    policy = ControllerPolicy(units=8, seed=0, learning_rate=0.05)
    policy.index("a", 4)
    policy.index("b", 3)
    good, bad = [(0, 1), (1, 2)], [(0, 3), (1, 0)]
    policy.update([good, bad], [1.0, -1.0])
    learnt, step = policy.params.copy(), policy.adam_step
    with pytest.warns(RuntimeWarning, match="not finite.*skipped"):
        assert policy.update([good, bad], [float("nan"), -1.0]) is None  # no NaN loss
    np.testing.assert_array_equal(policy.params, learnt)  # was NaN everywhere
    assert policy.adam_step == step
    policy.update([good, bad], [1.0, -1.0])  # and it still learns
    assert np.isfinite(policy.params).all() and policy.adam_step == step + 1


def test_a_growing_space_adds_a_head_and_keeps_the_old_ones(tmp_path):
    oracle = make(factory, tmp_path, max_trials=200, seed=2)
    drive(oracle, best_count, trials=150)
    learnt = probability_of(oracle, BEST)
    old_params = oracle.policy.params.copy()
    oracle.hyperparameters.Choice("late", ["a", "b", "c"])
    trial = oracle.create_trial("tuner0")
    assert oracle.policy.decisions[-1] == "late"
    assert oracle.policy.decisions[:6] == list(BEST)
    # The new head's parameters come after the old ones, which are untouched.
    np.testing.assert_array_equal(oracle.policy.params[:, : old_params.shape[1]], old_params)
    assert oracle.policy.params.shape[1] > old_params.shape[1]
    finish(oracle, trial, best_count(trial.hyperparameters.values))
    later = drive(oracle, lambda v: best_count(v) + (v["late"] == "c"), trials=30)
    assert all(v["late"] in ("a", "b", "c") for v in later)
    # What was learnt for the old decisions is still there.
    assert probability_of(oracle, {**BEST, "late": "c"}) > 0.1 * learnt / 3


def test_one_name_with_other_values_in_another_scope_gets_its_own_head(tmp_path):
    space = keras_tuner.HyperParameters()
    space.Choice("model", ["mlp", "cnn"])
    with space.conditional_scope("model", ["mlp"]):
        space.Choice("units", [16, 32])
    with space.conditional_scope("model", ["cnn"]):
        space.Choice("units", [8, 16, 32, 64])
    oracle = make(lambda **kw: RLControllerOracle(units=16, num_initial_points=2, **kw),
                  tmp_path, space=space, max_trials=30)
    seen = drive(oracle, lambda v: v["units"] / 64 + (v["model"] == "cnn"))
    # Each of the 6 models once, with the values proposed (was: "decision 'units' has 4
    # tokens now but its policy head has 2"; then keras-tuner's `ensure_active_values`
    # dropped a branch's `units` and redrew it from the global `random`).
    assert len(seen) == 6 and len({(v["model"], v["units"]) for v in seen}) == 6
    assert {v["units"] for v in seen if v["model"] == "mlp"} == {16, 32}
    # The cnn branch draws from its own 4 tokens: values the mlp head does not have.
    # (Any of them: which ones depends on float32 rounding in TensorFlow's threads.)
    assert {v.get("units") for v in seen if v["model"] == "cnn"} & {8, 64}
    assert sorted(oracle.policy.decisions) == ["model", "units", "units#4"]
    assert any(k.startswith("policy/prob/units/") for k in oracle.strategy_diagnostics())


def test_a_choice_wider_than_num_buckets_proposes_only_its_values(tmp_path):
    # A list of values is not a range: a bucket's centre named 0.35 for [0.1 .. 1.1],
    # 72.0 for ints, and failed on strings ("could not convert string to float").
    words, tenths = [f"act{i}" for i in range(12)], [0.1 * i for i in range(1, 12)]
    space = keras_tuner.HyperParameters()
    space.Choice("word", words)
    space.Choice("tenth", tenths)
    oracle = make(lambda **kw: RLControllerOracle(units=8, num_initial_points=2, **kw),
                  tmp_path, space=space, max_trials=14)
    seen = drive(oracle, lambda v: words.index(v["word"]) + tenths.index(v["tenth"]))
    assert len(seen) == 14
    assert all(type(v["tenth"]) is float and v["tenth"] in tenths for v in seen), seen
    assert all(v["word"] in words for v in seen)
    assert len({(v["word"], v["tenth"]) for v in seen}) == 14  # no repeat of a configuration
    diagnostics = oracle.strategy_diagnostics()
    assert {k for k in diagnostics if k.startswith("policy/prob/word/")} == {
        f"policy/prob/word/{w}" for w in words}


def test_every_value_of_a_bucketed_range_can_be_proposed(tmp_path):
    # 16 values in 10 buckets: the policy proposed each bucket's centre only, and
    # 64, 128, 224, 320, 384 and 480 never (a review's finding); a point range had
    # a head of 10 tokens, all 0.5.
    space = keras_tuner.HyperParameters()
    space.Int("units", 32, 512, step=32)
    space.Int("depth", 1, 11, sampling="log")
    space.Float("rate", 0.5, 0.5)
    space.Choice("act", [f"a{i}" for i in range(8)])
    oracle = make(lambda **kw: RLControllerOracle(units=8, num_initial_points=0, **kw),
                  tmp_path, space=space, max_trials=120, seed=4)
    seen = drive(oracle, lambda v: v["units"] / 512)
    assert {v["units"] for v in seen} == set(range(32, 513, 32))
    assert {v["depth"] for v in seen} == set(range(1, 12))
    assert {v["rate"] for v in seen} == {0.5} and "rate" not in oracle.policy.decisions
    # Diagnostics name a bucket by its centre; buckets that share one add up.
    probs = [v for k, v in oracle.strategy_diagnostics().items()
             if k.startswith("policy/prob/depth/")]
    assert len(probs) < 10 and math.isclose(sum(probs), 1.0, rel_tol=1e-5)


def test_a_draw_like_a_trial_of_a_smaller_space_credits_only_what_it_read(tmp_path):
    # The space grew by u1 after every configuration of {n, u0} was tried: draws
    # that match those trials on what they read were learnt from with u1
    # credited, a decision their models never had (a review's finding).
    space = keras_tuner.HyperParameters()
    space.Choice("n", ["a", "b"])
    space.Choice("u0", [8, 16])
    oracle = make(lambda **kw: RLControllerOracle(units=8, num_initial_points=0, **kw),
                  tmp_path, space=space, max_trials=12, seed=4)
    for _ in range(4):
        trial = oracle.create_trial("tuner0")
        oracle.note_unused(trial.trial_id, [])
        finish(oracle, trial, 1.0)
    oracle.hyperparameters.Choice("u1", [1, 2, 3])
    batches = []
    update = oracle.policy.update
    oracle.policy.update = lambda steps, advantages: batches.append(steps) or update(
        steps, advantages)
    assert oracle.create_trial("tuner0").status == TrialStatus.STOPPED  # all built before
    u1 = oracle.policy.decisions.index("u1")
    steps = [step for batch in batches for sequence in batch for step in sequence]
    assert any(step[0] == u1 for step in steps)
    assert all(step[2:] == (0,) for step in steps if step[0] == u1), steps
    assert all(step[2:] == () for step in steps if step[0] != u1), steps


def head_params(policy, name):
    """The kernel and bias of decision ``name``'s softmax head, flattened."""
    from metanas.tuners.policy import _variable_names, _variable_shapes

    j = policy.decisions.index(name)
    shapes = _variable_shapes(policy.units, policy.num_layers, policy.sizes)
    start, out = 0, []
    for variable in _variable_names(policy.num_layers, len(policy.decisions)):
        size = int(np.prod(shapes[variable]))
        if variable in (f"decision_{j}/kernel", f"decision_{j}/bias"):
            out.append(policy.params[0, start:start + size])
        start += size
    return np.concatenate(out)


def test_an_update_credits_only_the_steps_given_credit():
    policy = ControllerPolicy(units=8, seed=0, learning_rate=0.05, entropy_weight=0.0)
    policy.index("a", 4)
    policy.index("b", 3)
    before = {n: head_params(policy, n).copy() for n in ("a", "b")}
    policy.update([[(0, 1), (1, 2, 0)], [(0, 3), (1, 0, 0)]], [1.0, -1.0])
    assert not np.allclose(head_params(policy, "a"), before["a"])
    np.testing.assert_array_equal(head_params(policy, "b"), before["b"])
    policy.update([[(0, 1), (1, 2)]], [1.0])
    assert not np.allclose(head_params(policy, "b"), before["b"])


@pytest.mark.parametrize("note", [True, False])
def test_a_decision_the_model_never_read_gets_no_credit(tmp_path, note):
    # A model that reads units_0 and never units_1 (a layer it did not build):
    # the reward says nothing about units_1, so its head must not move.
    space = keras_tuner.HyperParameters()
    space.Choice("units_0", [8, 16, 32, 64])
    space.Choice("units_1", [8, 16, 32, 64])
    oracle = make(lambda **kw: RLControllerOracle(
        units=16, num_initial_points=0, entropy_weight=0.0, **kw),
        tmp_path, space=space, max_trials=12, seed=3)
    trial = oracle.create_trial("tuner0")  # the policy's first draw adds its heads
    start = head_params(oracle.policy, "units_1").copy()
    while trial.status != TrialStatus.STOPPED:
        if note:
            oracle.note_unused(trial.trial_id, ["units_1"])
        finish(oracle, trial, trial.hyperparameters.values["units_0"] / 64)
        trial = oracle.create_trial("tuner0")
    assert oracle.updates >= 4
    if note:  # (configurations that differ only in units_1 count as tried)
        assert len(oracle.end_order) == 4
        np.testing.assert_array_equal(head_params(oracle.policy, "units_1"), start)
        resumed = make(lambda **kw: RLControllerOracle(units=16, **kw), tmp_path,
                       space=space, max_trials=12, seed=3)
        resumed.reload()
        assert resumed._unread == oracle._unread != {}
    else:
        assert not np.allclose(head_params(oracle.policy, "units_1"), start)


def test_resume_restores_weights_optimizer_and_baseline(tmp_path):
    oracle = make(factory, tmp_path, max_trials=60, seed=6, batch_size=3)
    drive(oracle, best_count, trials=30)
    oracle.save()
    resumed = make(factory, tmp_path, max_trials=60, seed=99, batch_size=3)
    resumed.reload()
    np.testing.assert_array_equal(resumed.policy.params, oracle.policy.params)
    assert resumed.policy.adam_step == oracle.policy.adam_step > 0
    assert resumed.baseline == oracle.baseline
    assert resumed.updates == oracle.updates
    assert drive(resumed, best_count, trials=20) == drive(oracle, best_count, trials=20)
    # The state is plain JSON: the weights are base64 text, never a pickle.
    state = json.loads((tmp_path / "p" / "oracle.json").read_text())
    assert isinstance(state["rl"]["policy"], str)


def test_a_state_saved_before_the_first_update_reloads(tmp_path):
    # The first sampled proposal adds the policy's heads; a save between it and
    # the first update (a crash mid-trial, a short search) must hold them.
    oracle = make(factory, tmp_path, max_trials=20, seed=1, num_initial_points=0, batch_size=4)
    oracle.get_state()  # encodes the policy before it has any head
    trial = oracle.create_trial("tuner0")
    assert oracle.policy.decisions and oracle.updates == 0
    oracle.save()
    resumed = make(factory, tmp_path, max_trials=20, seed=1, num_initial_points=0, batch_size=4)
    resumed.reload()
    np.testing.assert_array_equal(resumed.policy.params, oracle.policy.params)
    assert resumed.policy.decisions == oracle.policy.decisions
    finish(oracle, trial, best_count(trial.hyperparameters.values))
    assert drive(resumed, best_count, trials=5)


def test_a_state_from_another_policy_shape_is_an_error(tmp_path):
    oracle = make(factory, tmp_path, max_trials=20, seed=1)
    drive(oracle, best_count, trials=10)
    other = make(lambda **kw: RLControllerOracle(units=16, **kw), tmp_path, max_trials=20)
    with pytest.raises(ValueError, match="units or num_layers"):
        other.set_state(json.loads(json.dumps(oracle.get_state())))


def test_min_objective_learns_like_max(tmp_path):
    up = drive(make(factory, tmp_path, name="up", objective=MAX, max_trials=40), best_count)
    down = drive(
        make(factory, tmp_path, name="down", objective=MIN, max_trials=40),
        lambda v: -best_count(v),
    )
    assert up == down


def test_diagnostics_describe_the_policy(tmp_path):
    oracle = make(factory, tmp_path, max_trials=20, seed=1)
    # Before its first sample: no policy to describe (was entropy 0 and
    # mode_prob 1, a certain policy, for one that has not chosen anything yet).
    assert oracle.strategy_diagnostics() == {"policy/updates": 0.0}
    drive(oracle, best_count, trials=20)
    diagnostics = oracle.strategy_diagnostics()
    assert diagnostics["policy/updates"] > 0
    for key in ("policy/entropy", "policy/baseline", "policy/last_loss", "policy/mode_prob"):
        assert math.isfinite(diagnostics[key]), key
    for name in BEST:
        total = sum(v for k, v in diagnostics.items() if k.startswith(f"policy/prob/{name}/"))
        assert total == pytest.approx(1.0)
    assert 0 < diagnostics["policy/entropy"] <= 6 * math.log(5) + 1e-9


@pytest.mark.parametrize(
    "setting, value",
    [
        ("units", 0),
        ("units", 2.5),
        ("num_layers", 0),
        ("temperature", 0.0),
        ("temperature", "hot"),
        ("tanh_constant", -1.0),
        ("learning_rate", 0.0),
        ("learning_rate", math.nan),
        ("baseline_decay", 1.0),
        ("baseline_decay", -0.1),
        ("entropy_weight", -1e-3),
        ("clip_norm", 0.0),
        ("batch_size", 0),
        ("batch_size", True),
        ("num_initial_points", -1),
        ("reward_normalization", "minmax"),
        ("failed_trial_reward", math.inf),
        # Beyond float32, where the policy computes: every weight became NaN.
        ("temperature", 1e-40),
        ("entropy_weight", 1e300),
        ("tanh_constant", 1e300),
        ("clip_norm", 1e300),
        ("failed_trial_reward", -1e300),
        ("temperature", np.complex128(1 + 1j)),  # was taken as 1.0
        pytest.param("temperature", 10**400, id="temperature-10**400"),  # was OverflowError
    ],
)
def test_bad_settings_raise(setting, value):
    with pytest.raises(ValueError, match=f"{setting} must be "):
        RLControllerOracle(objective=MAX, **{setting: value})


def test_a_bad_setting_is_told_the_range_it_must_be_in():
    with pytest.raises(ValueError, match=r"baseline_decay must be a number >= 0 and < 1, "
                                         r"got 1\.5\."):
        RLControllerOracle(objective=MAX, baseline_decay=1.5)
    with pytest.raises(ValueError, match=r"temperature must be a number >= 0\.01 and "
                                         r"<= 100, got 1e-40\."):
        RLControllerOracle(objective=MAX, temperature=1e-40)


def test_settings_are_keyword_only():
    with pytest.raises(TypeError):
        RLControllerOracle(MAX, 10, 1)  # seed must be named


def test_declared_setting_defaults_are_the_constructor_defaults():
    space = RLControllerOracle.settings_space()
    declared = RLControllerOracle(
        **RLControllerOracle.settings_from_params({k: s.default for k, s in space.items()})
    )
    default = RLControllerOracle()
    for name, setting in space.items():
        assert getattr(declared, name) == getattr(default, name), name
        if setting.kind != "categorical":
            assert setting.low <= setting.default <= setting.high, name
        else:
            assert setting.default in setting.choices, name
    for values in ({k: s.low for k, s in space.items() if s.kind != "categorical"},
                   {k: s.high for k, s in space.items() if s.kind != "categorical"}):
        RLControllerOracle(**RLControllerOracle.settings_from_params(values))


def test_the_tuner_drives_the_oracle(tmp_path):
    class Synthetic(RLControllerSearch):
        def run_trial(self, trial, *args, **kwargs):
            return {"score": best_count(trial.hyperparameters.values)}

    def build(hp):
        for name in BEST:
            hp.Choice(name, OPS)

    tuner = Synthetic(
        hypermodel=build, objective=keras_tuner.Objective("score", "max"), max_trials=12,
        seed=3, num_initial_points=2, units=16, directory=str(tmp_path), project_name="t",
    )
    assert isinstance(tuner.oracle, RLControllerOracle) and tuner.oracle.units == 16
    tuner.search(verbose=0)
    assert len(tuner.oracle.end_order) == 12
    assert tuner.oracle.updates > 0
