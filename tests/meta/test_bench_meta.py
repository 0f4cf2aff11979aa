"""The meta-layer on the benchmark tables: evaluator, task features, and the command line."""

import json

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

from metanas import cli
from metanas.bench import TUNING_TASKS, load_task
from metanas.meta import MetaLearner, ObjectiveError, normalized_regret_auc
from metanas.meta.evaluate import BenchEvaluator, curve_score, final_regret_score, random_regret
from metanas.meta.tasks import BENCH_DATASETS, bench_features, meta_tasks
from tests.paths import read_only

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_tuning_task_has_meta_features_and_unknown_tasks_are_an_error():
    assert set(TUNING_TASKS) <= set(BENCH_DATASETS)
    car = bench_features("hpobench/car", load_task("hpobench/car").hyperparameters())
    assert car["modality"] == "tabular" and car["decisions"] == len(load_task("hpobench/car").space)
    assert 0.5 < car["class_balance"] < 0.7  # 1210/384/69/65 is far from balanced
    assert bench_features("nb201/cifar10")["modality"] == "image"
    assert bench_features("hpolib/naval_propulsion")["task_type"] == "regression"
    with pytest.raises(ValueError, match="unknown task 'hpobench/nope'; known tasks: "):
        meta_tasks(["hpobench/nope"])
    with pytest.raises(ValueError, match="must be unique"):
        meta_tasks(["hpobench/car", "hpobench/car"])


def test_the_meta_objective_is_scale_free_and_deterministic():
    task = load_task("hpolib/naval_propulsion")  # MSE in 1e-5 units, minimised
    assert random_regret(task) > 0
    evaluator = BenchEvaluator(budget=20)
    first, oracle = evaluator.run(task.name, "evolution", {"population_size": 8}, seed=3)
    again, _ = evaluator.run(task.name, "evolution", {"population_size": 8}, seed=3)
    assert first["score"] == again["score"]
    assert len(oracle.trials) == 20 and len(first["curve"]) == 20
    assert first["score"] == pytest.approx(normalized_regret_auc(first["curve"], random_regret(task)))
    # In units of a typical random configuration's regret: a search beats one random guess.
    assert 0 < first["score"] < 1
    assert curve_score(task.name, first["curve"][:10], 20) >= first["score"]
    with pytest.raises(ValueError, match="budget must be an int >= 2, got 1"):
        BenchEvaluator(budget=1)
    with pytest.raises(ValueError, match="unknown strategy 'annealing'"):
        evaluator.run(task.name, "annealing", {}, seed=0)


def test_meta_train_and_recommend_on_the_command_line(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/meta.db"
    argv = ["meta-train", "--tasks", "hpobench/australian,hpobench/credit_g", "--budget", "12",
            "--meta-trials", "3", "--storage", storage, "--seed", "0", "--plots", str(tmp_path / "p")]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert "meta-trials: 100%" in err and "3/3" in err  # the progress bar
    summary = json.loads(out.splitlines()[0])
    assert summary["meta_trials"] == 3
    assert (tmp_path / "p" / "history.png").stat().st_size > 1000
    # The plots and the study's summary went to MLflow too (the suite's store).
    client = MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("metanas-meta").experiment_id],
        f"attributes.run_name = 'meta-study-metanas-meta' and params.storage = '{storage}'")
    assert run.data.params["meta_trials"] == "3"
    assert run.data.metrics["best_meta_objective"] == pytest.approx(
        min(t.value for t in MetaLearner(storage).study.trials))
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "meta-study")}
    assert "meta-study/history.png" in logged
    trials = MetaLearner(storage).study.trials
    assert all(set(t.user_attrs["per_task"]) == {"hpobench/australian", "hpobench/credit_g"}
               for t in trials)

    assert cli.main(["recommend", "--task", "hpobench/car", "--storage", storage]) == 0
    choice = json.loads(capsys.readouterr().out)
    # What the library recommends for the task's features, from its similar tasks.
    expected = MetaLearner(storage).recommend(
        bench_features("hpobench/car", load_task("hpobench/car").hyperparameters()))
    assert "similar tasks: hpobench/" in choice["source"]
    assert (choice["strategy"], choice["settings"], choice["source"]) == (
        expected.strategy, json.loads(json.dumps(expected.settings)), expected.source)
    assert choice["expected"] == pytest.approx(expected.expected)


def test_meta_train_on_the_tasks_similar_to_one(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/meta.db"
    argv = ["meta-train", "--tasks", "tuning", "--similar-to", "hpobench/car", "--budget", "12",
            "--meta-trials", "1", "--storage", storage, "--no-progress", "--no-mlflow"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    near = ["hpobench/blood_transfusion", "hpobench/credit_g", "hpobench/australian"]
    assert f"tasks similar to hpobench/car: {', '.join(near)}" in err
    (trial,) = MetaLearner(storage).study.trials
    assert sorted(trial.user_attrs["per_task"]) == sorted(near)


def test_recommend_on_an_empty_storage_prints_the_defaults_and_a_warning(tmp_path, capsys):
    # A storage that does not exist (a mistyped path) is an error, and is not created.
    assert cli.main(["recommend", "--task", "nb201/cifar10",
                     "--storage", f"sqlite:///{tmp_path}/emtpy.db"]) == 2
    assert "--storage: no meta storage at" in capsys.readouterr().err
    assert not (tmp_path / "emtpy.db").exists()
    MetaLearner(f"sqlite:///{tmp_path}/empty.db")  # one that exists, with no meta-trial
    assert cli.main(["recommend", "--task", "nb201/cifar10",
                     "--storage", f"sqlite:///{tmp_path}/empty.db"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["source"] == "defaults"
    assert "warning: study 'metanas-meta' in the meta storage" in err and "no meta-trial" in err
    assert "other studies" not in err
    # A mistyped --study-name is an error naming the studies the storage holds,
    # and leaves no empty study behind.
    from metanas.meta import MetaTask

    storage = f"sqlite:///{tmp_path}/empty.db"
    MetaLearner(storage, study_name="mine").record(
        task=MetaTask("t", {"log_samples": 2.0}), strategy="evolution", params={}, score=0.1)
    assert cli.main(["recommend", "--task", "nb201/cifar10", "--storage", storage,
                     "--study-name", "mien"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "holds no study 'mien'; its studies: ['metanas-meta', 'mine']" in err
    assert sorted(optuna.get_all_study_names(storage)) == ["metanas-meta", "mine"]
    # A library user who creates studies still hears of the others in the warning.
    with pytest.warns(UserWarning, match=r"other studies: \['metanas-meta', 'mine'\]"):
        MetaLearner(storage, study_name="mien").recommend({"log_samples": 2.0})


@pytest.mark.parametrize(
    "argv, message",
    [
        (["recommend", "--task", "mnist"], "unknown task 'mnist'"),
        (["recommend", "--task", "nb201/cifar10", "--storage", "meta.db"],
         "must be an Optuna storage URL"),
        (["meta-train", "--tasks", "nb201/cifar10", "--budget", "1"], "--budget must be >= 2"),
        (["meta-train", "--tasks", "tuning", "--similar-to", "nb201/bogus"], "unknown task 'nb201/bogus'"),
        (["meta-train", "--tasks", "tuning", "--similar-to", "tuning"], "--similar-to takes one task"),
        (["meta-train", "--tasks", "hpobench/car", "--similar-to", "hpobench/car"],
         "--tasks holds no task other than 'hpobench/car'"),
        (["meta-train", "--tasks", "tuning", "--similar-to", "hpobench/car", "--k", "0"],
         "--k must be >= 1, got 0"),
        (["meta-train", "--tasks", "tuning", "--k", "2"], "--k needs --similar-to"),
        (["meta-train", "--tasks", "tuning", "--similar-to", " "], "--similar-to needs a task name"),
        (["meta-train", "--tasks", "tuning", "--similar-to", ","],
         "--similar-to needs at least one task, got ','"),
        (["recommend", "--task", ""], "--task needs at least one task, got ''"),
        (["meta-train", "--tasks", "hpobench/car", "--study-name", ""],
         "the study's name (--study-name) must be a non-empty string, got ''"),
        (["meta-train", "--tasks", "hpobench/car", "--storage", ""],
         "--storage must be an Optuna storage URL such as 'sqlite:///meta.db', got ''"),
        (["meta-train", "--tasks", "nb201/cifar10", "--strategies", "annealing"],
         "unknown strategies ['annealing']"),
        (["meta-train", "--tasks", "nb201/cifar10", "--storage", "postgresql://u:secret@127.0.0.1:1/m"],
         "cannot open the meta storage 'postgresql://u:***@"),
        # An in-memory storage keeps nothing: refused before any meta-trial runs.
        (["meta-train", "--tasks", "hpobench/car", "--budget", "6", "--meta-trials", "1",
          "--no-progress", "--no-mlflow", "--storage", "sqlite://"],
         "--storage: 'sqlite://' is an in-memory database, which keeps nothing after the "
         "command; give a file (sqlite:///path.db) or a server URL"),
        (["meta-train", "--tasks", "hpobench/car", "--budget", "6", "--meta-trials", "1",
          "--no-progress", "--no-mlflow", "--storage", "sqlite:///:memory:"],
         "'sqlite:///:memory:' is an in-memory database"),
        (["recommend", "--task", "hpobench/car", "--storage", "sqlite://"],
         "'sqlite://' is an in-memory database"),
        (["recommend", "--task", "hpobench/car", "--storage", "sqlite:///:memory:"],
         "'sqlite:///:memory:' is an in-memory database"),
        (["meta-train", "--tasks", "nb201/cifar10", "--strategies", ","],
         "--strategies needs at least one strategy, got ','; allowed: evolution, random, rl"),
        (["recommend", "--task", "nb201/cifar10", "--strategies", " , "],
         "--strategies needs at least one strategy, got ' , '"),
        # recommend takes one task: 'tuning' (a group) is not among those it lists.
        (["recommend", "--task", "nope"],
         "--task: unknown task 'nope'; known tasks: nb201/cifar10, "),
        (["recommend", "--task", "tuning"],
         "--task: unknown task 'tuning'; known tasks: nb201/cifar10, "),
        (["meta-train", "--tasks", "tuning", "--similar-to", "nope"],
         "--similar-to: unknown task 'nope'; known tasks: 'tuning' or "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "secret" not in err


def test_the_final_objective_scores_the_returned_configuration():
    task = load_task("hpobench/car")
    final = BenchEvaluator(budget=30, objective="final")
    area = BenchEvaluator(budget=30)
    summary, _ = final.run(task.name, "evolution", {"racing_fraction": 0.3}, seed=2)
    same, _ = area.run(task.name, "evolution", {"racing_fraction": 0.3}, seed=2)
    assert summary["regret"] == same["regret"]  # one search, two scores
    assert summary["score"] == pytest.approx(summary["regret"] / random_regret(task))
    assert same["score"] == pytest.approx(normalized_regret_auc(same["curve"], random_regret(task)))
    assert summary["score"] != same["score"]
    assert final_regret_score(task.name, np.float32(0.0)) == 0.0
    with pytest.raises(ValueError, match=r"objective must be one of \['auc', 'final'\], got 'area'"):
        BenchEvaluator(objective="area")
    for bad in (-0.5, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match="regret must be a finite number >= 0, got"):
            final_regret_score(task.name, bad)


def test_one_study_holds_one_meta_objective(tmp_path):
    storage = f"sqlite:///{tmp_path}/meta.db"
    tasks = meta_tasks(["hpobench/car"])
    learner = MetaLearner(storage, seed=0)
    learner.meta_train(tasks, BenchEvaluator(budget=6, objective="final"), n_trials=1)
    assert learner.objective == "final"
    assert learner.study.trials[0].user_attrs["objective"] == "final"
    with pytest.raises(ObjectiveError, match="is recorded as scored with objective 'final'; got "
                                             "scores of objective 'auc'"):
        MetaLearner(storage).meta_train(tasks, BenchEvaluator(budget=6), n_trials=1)
    with pytest.raises(ObjectiveError, match="objective 'final'"):  # a production record
        learner.record(task=tasks[0], strategy="random", params={}, score=0.1)
    assert len(MetaLearner(storage).study.trials) == 1  # nothing ran, nothing lost
    with pytest.raises(ValueError, match=r"objective must be one of \['auc', 'final'\], got 'area'"):
        learner.ensure_objective("area")
    # A study of production records only holds "auc" scores.
    production = MetaLearner(storage, study_name="production")
    production.study.add_trial(optuna.trial.create_trial(  # as recorded before objectives were
        params={"strategy": "random"}, value=0.3, user_attrs={"source": "production"},
        distributions={"strategy": optuna.distributions.CategoricalDistribution(["random"])}))
    with pytest.raises(ObjectiveError, match="objective 'auc'"):
        production.ensure_objective("final")
    # A run stopped before its first meta-trial finished leaves a claim that another
    # objective may take over.
    stopped = MetaLearner(storage, study_name="stopped")
    stopped.ensure_objective("final")
    stopped.meta_train(tasks, BenchEvaluator(budget=6), n_trials=1, strategies=("random",))
    assert stopped.objective == "auc"
    # An explicit objective for a wrapped evaluator; one that contradicts the evaluator's.
    wrapped = MetaLearner(storage, study_name="wrapped", seed=0)
    final = BenchEvaluator(budget=6, objective="final")
    wrapped.meta_train(tasks, lambda *args: final(*args), n_trials=1, strategies=("random",),
                       objective="final")
    assert wrapped.objective == "final"
    with pytest.raises(ValueError, match="objective='auc' but the evaluator scores 'final'"):
        wrapped.meta_train(tasks, final, n_trials=1, objective="auc")
    # A meta-trial whose study another process claimed meanwhile fails, and says why.
    flipped = MetaLearner(storage, study_name="flipped", seed=0)

    def flip(task, strategy, settings, seed):
        flipped.study.set_user_attr("meta/objective", "final")
        return 0.5

    with pytest.raises(ObjectiveError, match="recorded as scored with objective 'final'"):
        flipped.meta_train(tasks, flip, n_trials=1, strategies=("random",))
    assert [t.state for t in flipped.study.trials] == [optuna.trial.TrialState.FAIL]
    # An evaluator that names no objective is taken to score the area.
    custom = MetaLearner(storage, study_name="custom", seed=0)
    assert custom.objective == "auc"  # nothing recorded yet
    custom.meta_train(tasks, lambda task, strategy, settings, seed: 0.5, n_trials=1)
    assert custom.study.user_attrs["meta/objective"] == "auc"
    assert custom.study.trials[0].user_attrs["objective"] == "auc"


def test_one_study_holds_one_budget(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/meta.db"
    tasks = meta_tasks(["hpobench/car"])
    learner = MetaLearner(storage, seed=0)
    learner.meta_train(tasks, BenchEvaluator(budget=6), n_trials=1, strategies=("random",))
    assert learner.study.user_attrs["meta/budget"] == 6
    assert learner.study.trials[0].user_attrs["budget"] == 6
    with pytest.raises(ObjectiveError, match="holds scores of searches of 6 evaluations; got a "
                                             "budget of 12"):
        MetaLearner(storage).meta_train(tasks, BenchEvaluator(budget=12), n_trials=1,
                                        strategies=("random",))
    assert len(MetaLearner(storage).study.trials) == 1  # nothing ran
    assert cli.main(["meta-train", "--tasks", "hpobench/car", "--strategies", "random",
                     "--budget", "12", "--storage", storage, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "got a budget of 12" in err and "another study (--study-name)" in err
    # recommend checks --strategies against the study's as meta-train does.
    assert cli.main(["recommend", "--task", "hpobench/car", "--strategies", "rl",
                     "--storage", storage]) == 2
    assert "ranges over the strategies ['random'] " in capsys.readouterr().err
    assert len(MetaLearner(storage).study.trials) == 1
    learner.meta_train(tasks, BenchEvaluator(budget=6), n_trials=1, strategies=("random",))
    assert len(learner.study.trials) == 2  # the same budget goes on
    # A meta-trial of another budget (a race between two first claims) is not ranked.
    learner.study.add_trial(optuna.trial.create_trial(
        params={"strategy": "random"}, value=0.0,
        user_attrs={"source": "meta-train", "objective": "auc", "budget": 12,
                    "per_task": {"hpobench/car": 0.0}, "per_seed": {"hpobench/car": [0.0]},
                    "features": {"hpobench/car": dict(tasks[0].features)}},
        distributions={"strategy": optuna.distributions.CategoricalDistribution(["random"])}))
    assert learner.recommend(tasks[0].features, alpha=None).expected > 0.0
    # A claim whose searches never finished may be taken over.
    stopped = MetaLearner(storage, study_name="stopped", seed=0)
    stopped.ensure_budget(50)
    stopped.meta_train(tasks, BenchEvaluator(budget=6), n_trials=1, strategies=("random",))
    assert stopped.study.user_attrs["meta/budget"] == 6


def test_recommend_ignores_scores_of_another_objective(tmp_path):
    # Two processes that both found the study unclaimed: the losing claim's score stays
    # in the study, and recommend() must not compare it with the others.
    storage = f"sqlite:///{tmp_path}/meta.db"
    tasks = meta_tasks(["hpobench/car"])
    strategies = ("random", "evolution")
    learner = MetaLearner(storage, seed=0)
    learner.meta_train(tasks, BenchEvaluator(budget=6), n_trials=2, strategies=strategies)
    features = dict(tasks[0].features)
    best = learner.recommend(features, strategies=strategies, alpha=None).strategy
    other = next(s for s in strategies if s != best)
    learner.study.add_trial(optuna.trial.create_trial(
        params={"strategy": other}, value=0.0,
        distributions={"strategy": optuna.distributions.CategoricalDistribution(list(strategies))},
        user_attrs={"per_task": {"hpobench/car": 0.0}, "per_seed": {"hpobench/car": [0.0]},
                    "features": {"hpobench/car": features}, "source": "meta-train",
                    "objective": "final"}))
    assert learner.recommend(features, strategies=strategies, alpha=None).strategy == best
    learner.study.set_user_attr("meta/objective", "final")  # had the other claim stood
    assert learner.recommend(features, strategies=strategies, alpha=None).strategy == other


def test_meta_train_refuses_another_objective_on_the_command_line(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/meta.db"
    argv = ["meta-train", "--tasks", "hpobench/car", "--budget", "6", "--meta-trials", "1",
            "--storage", storage, "--seed", "0", "--no-progress", "--no-mlflow"]
    assert cli.main(argv + ["--objective", "final"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["objective"] == "final"
    assert cli.main(argv) == 2  # the default objective, auc
    err = capsys.readouterr().err.strip()
    assert err.startswith("metanas meta-train: error: study 'metanas-meta' is recorded as "
                          "scored with objective 'final'") and "\n" not in err
    assert len(MetaLearner(storage).study.trials) == 1
    fresh = tmp_path / "fresh.db"
    assert cli.main(["meta-train", "--tasks", "hpobench/car", "--storage", f"sqlite:///{fresh}",
                     "--objective", "area", "--no-progress", "--no-mlflow"]) == 2
    assert capsys.readouterr().err == ("metanas meta-train: error: --objective must be auc or "
                                       "final, got 'area'\n")
    assert not fresh.exists()  # refused before the storage was opened
    from metanas.meta import OBJECTIVES

    assert OBJECTIVES == ("auc", "final")  # as the command line spells them


def test_a_recorded_production_search_is_not_the_meta_study_s_best(tmp_path, capsys,
                                                                   monkeypatch):
    # Was (a review's finding): a production search recorded with score 0 (its
    # own scale, another task) was meta-train's best_value and MLflow's metric,
    # and the history plot's best (a re-review's).
    from optuna.visualization import matplotlib as ovm

    from metanas.meta import MetaTask

    plotted = []
    history = ovm.plot_optimization_history
    monkeypatch.setattr(ovm, "plot_optimization_history",
                        lambda study: plotted.append(study.trials) or history(study))

    storage = f"sqlite:///{tmp_path}/meta.db"
    MetaLearner(storage).record(task=MetaTask("my-data", {"log_samples": 3.0}),
                                strategy="random", params={}, score=0.0)
    argv = ["meta-train", "--tasks", "hpobench/car", "--budget", "10", "--meta-trials", "2",
            "--storage", storage, "--seed", "0", "--no-progress", "--plots", str(tmp_path / "p")]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    trained = [t.value for t in MetaLearner(storage).study.trials
               if t.user_attrs["source"] == "meta-train"]
    assert summary["meta_trials"] == len(trained) == 2
    assert summary["best_value"] == min(trained) > 0
    assert [[t.value for t in trials] for trials in plotted] == [trained]
    client = MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("metanas-meta").experiment_id],
        f"attributes.run_name = 'meta-study-metanas-meta' and params.storage = '{storage}'")
    assert run.data.params["meta_trials"] == "2"
    assert run.data.metrics["best_meta_objective"] == pytest.approx(min(trained))


def test_ctrl_c_in_meta_train_is_one_line_without_optunas_traceback(tmp_path, monkeypatch,
                                                                    capfd):
    import optuna

    from metanas.meta import MetaLearner

    def interrupted(self, *args, **kwargs):  # Ctrl-C inside a meta-trial's search
        def objective(trial):
            raise KeyboardInterrupt

        self.study.optimize(objective, n_trials=1)

    monkeypatch.setattr(MetaLearner, "meta_train", interrupted)
    storage = f"sqlite:///{tmp_path}/meta.db"
    code = cli.main(["meta-train", "--tasks", "hpobench/car", "--storage", storage,
                     "--no-progress"])
    err = capfd.readouterr().err
    # Says what was kept, as demo does (was: "interrupted" alone).
    assert code == 130 and err.strip() == (
        "metanas meta-train: interrupted; its completed meta-trials are kept in --storage: "
        "meta-train again to go on from them"), err
    # The interrupted meta-trial is recorded as failed, as before.
    study = optuna.load_study(study_name="metanas-meta", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL]


def test_optunas_lines_about_an_interrupted_meta_trial_are_dropped(caplog):
    # Was (a review's finding): "Trial 0 failed with value None." still showed.
    import logging

    import optuna

    from metanas import cli_meta

    logger = logging.getLogger("optuna.study._optimize")
    logger.addFilter(cli_meta._NOT_AN_INTERRUPT)
    try:
        study = optuna.create_study()

        def interrupted(trial):
            raise KeyboardInterrupt

        with caplog.at_level(logging.WARNING, logger="optuna"):
            with pytest.raises(KeyboardInterrupt):
                study.optimize(interrupted, n_trials=1)
            study.optimize(lambda trial: float("nan"), n_trials=1)  # a failure of its own
    finally:
        logger.removeFilter(cli_meta._NOT_AN_INTERRUPT)
    shown = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert [m.split(" because")[0] for m in shown] == [
        "Trial 1 failed with parameters: {}", "Trial 1 failed with value nan."]


def test_meta_train_without_budget_or_strategies_goes_on_with_the_studys(tmp_path, capsys):
    # The help promised that a study keeps the budget and strategies of its first
    # meta-training; omitting --budget applied 50 instead, and was refused.
    storage = f"sqlite:///{tmp_path}/meta.db"
    argv = ["meta-train", "--tasks", "hpobench/car", "--meta-trials", "1", "--storage", storage,
            "--seed", "0", "--no-progress", "--no-mlflow"]
    assert cli.main(argv + ["--budget", "6", "--strategies", "random"]) == 0
    capsys.readouterr()
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.splitlines()[0])["meta_trials"] == 2
    study = MetaLearner(storage).study
    assert study.user_attrs["meta/budget"] == 6
    assert [(t.params["strategy"], t.user_attrs["budget"]) for t in study.trials] == [
        ("random", 6), ("random", 6)]
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["meta-train"].format_help()
    assert "the study's; 50 for a new study" in " ".join(help_text.split())
    assert "the study's; evolution,random for a new study" in " ".join(help_text.split())

    # Leave-one-task-out on a study of that one task: the warning says why nothing is left.
    assert cli.main(["recommend", "--task", "hpobench/car", "--storage", storage,
                     "--exclude-task"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["source"] == "defaults"
    assert ("has no meta-trial on tasks other than the excluded ['hpobench/car']; "
            "recommending the default settings.") in err
    assert "to learn from" not in err and len(err.strip().splitlines()) == 1


def test_a_folder_given_as_the_meta_storage_is_named_so(tmp_path, capsys):
    # Was "cannot be opened for writing (Is a directory) (copy it somewhere writable)".
    for command in ("recommend", "meta-train"):
        argv = [command, "--storage", f"sqlite:///{tmp_path}",
                "--task" if command == "recommend" else "--tasks", "hpobench/car"]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.endswith(f"error: --storage: the meta storage {tmp_path} is a folder, not a "
                            "SQLite database file (give the database file)\n"), err


def test_a_read_only_meta_storage_is_named_as_the_cause(tmp_path, capsys):
    # Optuna's own message blamed "invalid data ... exceeding max length".
    folder = tmp_path / "store"
    folder.mkdir()
    storage = f"sqlite:///{folder}/meta.db"
    train = ["meta-train", "--tasks", "hpobench/car", "--budget", "6", "--meta-trials", "1",
             "--storage", storage, "--seed", "0", "--no-progress", "--no-mlflow"]
    recommend = ["recommend", "--task", "hpobench/car", "--storage", storage]
    assert cli.main(train) == 0
    capsys.readouterr()
    with read_only(folder):
        assert cli.main(train) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith(f"error: --storage: the meta storage {folder / 'meta.db'} is in a "
                            f"folder, {folder}, where SQLite cannot write its journal (copy it "
                            "somewhere writable)") and "\n" not in err, err
        assert cli.main(recommend) == 0  # reading needs no journal
        assert json.loads(capsys.readouterr().out)["task"] == "hpobench/car"
    with read_only(folder / "meta.db"):
        for argv in (recommend, train):
            assert cli.main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert (f"--storage: the meta storage {folder / 'meta.db'} cannot be opened for "
                    "writing") in err, err
            assert "\n" not in err
    assert len(MetaLearner(storage).study.trials) == 1  # nothing lost, nothing added
