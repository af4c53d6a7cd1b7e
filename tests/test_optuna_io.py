"""Optuna studies in and out, with the real packages: `tuner import-optuna` / `export-optuna` as
processes, `optuna.load_study` and `optuna.visualization` on the export, and a real
`optuna-dashboard` server listing the exported study and its trials."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState as OptunaState

from tests.helpers import experiment_dict, run, run_tuner
from tests.servers import free_port
from tuner import warmstart
from tuner.errors import Conflict, InvalidRequest
from tuner.optuna_io import export_study, import_study
from tuner.spec import load_spec
from tuner.storage import Repository, make_engine
from tuner.trials import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "dropout": FloatDistribution(0.0, 0.5, step=0.1),
    "layers": IntDistribution(1, 9, step=2),
    "units": IntDistribution(8, 256, log=True),
    "optimizer": CategoricalDistribution(["adam", "sgd"]),
    "batch": CategoricalDistribution([16, 32, 64]),
}


def _make_study(url: str) -> optuna.Study:
    """A study with every kind of distribution, intermediate values, pruned, failed and running
    trials, and user attributes (on the study and the trials)."""
    study = optuna.create_study(
        storage=url, study_name="mnist_search", direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=1),
    )  # fmt: skip
    study.set_user_attr("owner", "team-a")
    for i in range(9):
        trial = study.ask(SPACE)
        trial.set_user_attr("attempt", i)
        for step in range(3):
            trial.report(0.1 * i + 0.01 * step, step)
        if i == 3:
            study.tell(trial, state=OptunaState.FAIL)
        elif i == 5:
            study.tell(trial, state=OptunaState.PRUNED)
        else:
            study.tell(trial, 0.1 * i + 0.05)
    study.ask(SPACE)  # left RUNNING: not imported
    return study


FINISHED = (OptunaState.COMPLETE, OptunaState.PRUNED, OptunaState.FAIL)


def _view(study: optuna.Study) -> list[tuple[Any, ...]]:
    return [
        (t.state, t.value, t.params, t.distributions, t.intermediate_values, t.user_attrs)
        for t in study.get_trials(
            states=(OptunaState.COMPLETE, OptunaState.PRUNED, OptunaState.FAIL)
        )
    ]


def test_an_optuna_study_goes_to_tuner_and_back_unchanged(tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    original = _make_study(source_url)
    db = f"sqlite:///{tmp_path / 'tuner.db'}"
    imported = run_tuner(
        "import-optuna", "--storage", source_url, "--study", "mnist_search", "--db", db
    )
    assert imported.returncode == 0, imported.stderr
    assert "as experiment default/mnist-search: 9 trials, 1 left out" in imported.stdout

    repo = Repository(make_engine(db))
    record = repo.get_experiment("default", "mnist-search")
    trials = repo.trials(record.id)
    assert [t.state for t in trials].count(TrialState.SUCCEEDED) == 7
    assert {t.state for t in trials} == {
        TrialState.SUCCEEDED, TrialState.EARLY_STOPPED, TrialState.FAILED,
    }  # fmt: skip
    best = repo.leaderboard(record, limit=1)[0]
    assert best.objective == pytest.approx(original.best_value)
    assert best.parameters == original.best_params

    # The imported study can warm-start a new experiment over the same space: its completed
    # and pruned trials (a pruned trial has its last report as objective, as in Katib) feed it.
    warm = record.experiment.dump()
    warm["metadata"] = {"name": "mnist-warm", "namespace": "default"}
    warm["spec"]["warmStartFrom"] = "mnist-search"
    suggester = warmstart.build_suggester(repo, load_spec(warm))
    assert isinstance(suggester, warmstart.WarmSuggester) and len(suggester.prior) == 8
    assert len(suggester.suggest([], 2)) == 2

    back_url = f"sqlite:///{tmp_path / 'back.db'}"
    exported = run_tuner("export-optuna", "mnist-search", "--storage", back_url, "--db", db)
    assert exported.returncode == 0, exported.stderr
    back = optuna.load_study(study_name="mnist-search", storage=back_url)
    assert back.direction == original.direction
    assert back.user_attrs == original.user_attrs
    assert _view(back) == _view(original)


def test_a_tuner_experiment_opens_in_optuna_visualization_and_dashboard(tmp_path: Path) -> None:
    repo = Repository(make_engine(f"sqlite:///{tmp_path / 'tuner.db'}"))
    record = repo.create_experiment(load_spec(experiment_dict("quad", maxTrialCount=5)))
    run(repo, record, tmp_path)
    url = f"sqlite:///{tmp_path / 'export.db'}"
    done = export_study(repo, record, url)
    assert (done.study, done.trials, done.skipped) == ("quad", 5, 0)

    study = optuna.load_study(study_name="quad", storage=url)
    ours = {t.name: t for t in repo.history(record.id, with_curves=True)}
    assert len(study.trials) == 5
    for frozen in study.trials:
        trial = ours[frozen.user_attrs["tuner_trial"]]
        assert frozen.state is OptunaState.COMPLETE
        assert frozen.value == pytest.approx(trial.objective)
        assert frozen.params == trial.parameters
        assert frozen.intermediate_values == pytest.approx(dict(trial.curve))
        assert frozen.user_attrs["tuner_metric_accuracy"] == pytest.approx(
            trial.metrics["accuracy"]
        )
    assert study.best_value == pytest.approx(repo.leaderboard(record, limit=1)[0].objective)
    history = optuna.visualization.plot_optimization_history(study)
    assert len(history.data[0]["y"]) == 5
    importances = optuna.visualization.plot_param_importances(study)
    assert set(importances.data[0]["y"]) == {"x", "n"}

    with _dashboard(url) as base:
        studies = httpx.get(f"{base}/api/studies", timeout=10).json()["study_summaries"]
        assert [s["study_name"] for s in studies] == ["quad"]
        detail = httpx.get(f"{base}/api/studies/{studies[0]['study_id']}", timeout=10).json()
        assert len(detail["trials"]) == 5
        values = sorted(t["values"][0] for t in detail["trials"])
        assert values == pytest.approx(sorted(t.objective for t in ours.values()))
    with pytest.raises(Conflict, match="already has a study named 'quad'"):
        export_study(repo, record, url)  # refused, not merged


class _Dashboard:
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> str:
        port = free_port()
        exe = Path(sys.executable).parent / "optuna-dashboard"
        self.process = subprocess.Popen(
            [str(exe), self.url, "--port", str(port), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/meta", timeout=1).status_code == 200:
                    return base
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                pytest.fail("optuna-dashboard did not come up")
            time.sleep(0.05)

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


def _dashboard(url: str) -> _Dashboard:
    """A real `optuna-dashboard` server on the storage, stopped by its own pid."""
    return _Dashboard(url)


def test_studies_tuner_cannot_hold_are_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'odd.db'}"
    repo = Repository(make_engine(f"sqlite:///{tmp_path / 'tuner.db'}"))
    multi = optuna.create_study(storage=url, study_name="multi", directions=["minimize"] * 2)
    multi.add_trial(
        optuna.trial.create_trial(
            params={"x": 1.0}, distributions={"x": FloatDistribution(0, 2)}, values=[1.0, 2.0]
        )
    )
    with pytest.raises(InvalidRequest, match="2 objectives"):
        import_study(repo, url, "multi")
    mixed = optuna.create_study(storage=url, study_name="mixed")
    mixed.add_trial(
        optuna.trial.create_trial(
            params={"c": "a"},
            distributions={"c": CategoricalDistribution(["a", 1, None])},
            value=1.0,
        )
    )
    with pytest.raises(InvalidRequest, match="parameter 'c'"):
        import_study(repo, url, "mixed")
    conditional = optuna.create_study(storage=url, study_name="conditional")
    for params in ({"x": 1.0}, {"x": 1.0, "y": 2.0}):
        dists = {k: FloatDistribution(0, 3) for k in params}
        conditional.add_trial(
            optuna.trial.create_trial(params=params, distributions=dists, value=1.0)
        )
    with pytest.raises(InvalidRequest, match="conditional search space"):
        import_study(repo, url, "conditional", experiment="cond")
    missing = run_tuner(
        "import-optuna", "--storage", url, "--study", "nope", "--db", f"sqlite:///{tmp_path}/t.db"
    )
    assert missing.returncode != 0 and "no study named 'nope'" in missing.stderr
