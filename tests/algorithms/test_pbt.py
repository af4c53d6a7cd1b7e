"""Population-based training: Katib's simple-pbt shape run by ``tuner run``, and the rules."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from tests.algorithms._support import make_spec, make_trial, param, suggester
from tests.helpers import DATA, run_tuner
from tuner.algorithms.pbt import GENERATION, MEMBER, PARENT
from tuner.algorithms.registry import create_suggester
from tuner.errors import SpecError
from tuner.spec import load_spec
from tuner.storage import Repository, make_engine
from tuner.trials import ParamValue, Trial, TrialState

SPACE = [
    param("lr", "double", min="0.0001", max="0.02", step="0.0001"),
    param("layers", "int", min="1", max="4"),
    param("optimizer", "categorical", list=["sgd", "adam", "ftrl"]),
]
SETTINGS = {"random_state": "3"}


def test_simple_pbt_later_generations_start_from_better_checkpoints(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'pbt.db'}"
    work = tmp_path / "work"
    result = run_tuner(
        "run", str(DATA / "katib-pbt.yaml"), "--db", db, "--workdir", str(work), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert "Succeeded (ExperimentMaxTrialsReached)" in result.stdout

    repo = Repository(make_engine(db))
    try:
        record = repo.get_experiment("kubeflow", "simple-pbt")
        history = repo.history(record.id)
    finally:
        repo.engine.dispose()
    assert len(history) == 20
    assert all(t.state is TrialState.SUCCEEDED for t in history)
    by_name = {t.name: t for t in history}
    generations: dict[int, list[Trial]] = {}
    for t in history:
        generations.setdefault(int(str(t.attrs[GENERATION])), []).append(t)
    assert sorted(generations) == [0, 1, 2, 3]
    assert all(
        sorted(int(str(t.attrs[MEMBER])) for t in g) == [0, 1, 2, 3, 4]
        for g in generations.values()
    )

    def start(t: Trial) -> float:
        return t.metrics["Start-accuracy"]

    # Generation 0 starts from nothing; every later trial starts exactly where its parent (a
    # member of the generation before) ended: the checkpoint was handed down through its directory.
    assert all(start(t) == 0.0 and PARENT not in t.attrs for t in generations[0])
    for g in (1, 2, 3):
        exploits = 0
        for t in generations[g]:
            parent = by_name[str(t.attrs[PARENT])]
            assert parent.attrs[GENERATION] == g - 1
            assert start(t) == pytest.approx(parent.metrics["Validation-accuracy"], abs=1e-12)
            checkpoint = json.loads(
                (work / "kubeflow/simple-pbt" / t.name / "checkpoint/state.json").read_text()
            )
            assert checkpoint["epochs"] == 5 * (g + 1)
            if parent.attrs[MEMBER] != t.attrs[MEMBER]:
                exploits += 1  # the worst member took a best member's checkpoint and values
                assert parent.objective == max(p.objective or 0 for p in generations[g - 1])
                assert t.parameters == parent.parameters
        assert exploits == 1  # int(5 * truncation_threshold 0.2)
    mean_start = [statistics.mean(start(t) for t in generations[g]) for g in (0, 1, 2, 3)]
    assert mean_start[0] < mean_start[1] < mean_start[2] < mean_start[3], mean_start
    best_per_generation = [max(t.objective or 0 for t in generations[g]) for g in (0, 1, 2, 3)]
    assert best_per_generation == sorted(best_per_generation)


def finish(
    trial_params: Mapping[str, ParamValue], attrs: Mapping[str, object], number: int, value: float
) -> Trial:
    return make_trial(number, dict(trial_params), objective=value, attrs=attrs)


def test_a_generation_is_bred_only_when_every_member_finished() -> None:
    s = suggester("pbt", SPACE, SETTINGS)
    first = s.suggest([], 10)
    assert len(first) == 5  # n_population of generation 0, never more
    assert [x.attrs for x in first] == [{GENERATION: 0, MEMBER: m} for m in range(5)]
    history = [finish(x.parameters, x.attrs, i, float(i)) for i, x in enumerate(first)]
    history[4].state = TrialState.RUNNING
    history[4].objective = None
    assert s.suggest(history, 5) == []  # member 4 still runs

    history[4].state = TrialState.SUCCEEDED
    history[4].objective = 4.0
    bred = s.suggest(history, 5)
    assert [(x.attrs[GENERATION], x.attrs[MEMBER]) for x in bred] == [(1, m) for m in range(5)]
    # minimize: member 4 (objective 4) is the worst; it copies the best, member 0.
    assert bred[4].attrs[PARENT] == history[0].name
    assert bred[4].parameters == history[0].parameters
    for m in range(4):
        assert bred[m].attrs[PARENT] == history[m].name
        assert bred[m].parameters != history[m].parameters  # perturbed
        ratio = float(bred[m].parameters["lr"]) / float(history[m].parameters["lr"])
        clipped = bred[m].parameters["lr"] in (0.0001, 0.02)
        assert clipped or min(abs(ratio - 0.8), abs(ratio - 1.2)) < 0.05, ratio


def test_a_failed_member_runs_again_as_it_was() -> None:
    s = suggester("pbt", SPACE, SETTINGS)
    first = s.suggest([], 5)
    history = [finish(x.parameters, x.attrs, i, float(i)) for i, x in enumerate(first)]
    history[2].state = TrialState.FAILED
    history[2].objective = None
    (retry,) = s.suggest(history, 5)
    assert retry.parameters == history[2].parameters and retry.attrs == history[2].attrs
    history.append(finish(retry.parameters, retry.attrs, 5, 2.0))
    assert {x.attrs[GENERATION] for x in s.suggest(history, 5)} == {1}


def test_resample_probability_zero_keeps_values_and_the_seed_makes_it_reproducible() -> None:
    settings = {**SETTINGS, "resample_probability": "0"}
    first = suggester("pbt", SPACE, settings).suggest([], 5)
    history = [finish(x.parameters, x.attrs, i, float(i)) for i, x in enumerate(first)]
    bred = suggester("pbt", SPACE, settings).suggest(history, 5)
    assert [x.parameters for x in bred[:4]] == [t.parameters for t in history[:4]]
    # A rebuilt suggester (a restart) breeds the same generation from the same history.
    again = create_suggester(make_spec("pbt", SPACE, settings)).suggest(history, 5)
    assert [x.parameters for x in again] == [x.parameters for x in bred]
    assert [x.attrs for x in again] == [x.attrs for x in bred]


@pytest.mark.parametrize(
    ("settings", "path", "fragment"),
    [
        ({"n_population": "4"}, "spec.algorithm.algorithmSettings[0]", "must be an integer >= 5"),
        ({"truncation_threshold": "1.5"}, "spec.algorithm.algorithmSettings[0]", "must be <= 1"),
        ({"resample_probability": "-1"}, "spec.algorithm.algorithmSettings[0]", "must be >= 0"),
        ({"suggestion_trial_dir": "ckpt"}, "spec.algorithm.algorithmSettings[0]", "absolute path"),
    ],
)
def test_bad_pbt_settings_are_reported_at_their_path(
    settings: dict[str, str], path: str, fragment: str
) -> None:
    spec = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "pbt"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "acc"},
            "algorithm": {
                "algorithmName": "pbt",
                "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
            },
            "parameters": SPACE,
        },
    }
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    errors = info.value.errors
    assert any(e.path == path and fragment in e.message for e in errors), errors
    # Katib's three required settings are named when missing.
    required = {"suggestion_trial_dir", "n_population", "truncation_threshold"} - set(settings)
    missing = [e.message for e in errors if e.path == "spec.algorithm.algorithmSettings"]
    assert sorted(m.split(":")[0] for m in missing) == sorted(required), errors


def test_the_kubernetes_runner_refuses_pbt_rather_than_lose_the_checkpoints() -> None:
    pytest.importorskip("kubernetes")
    from tuner.runners.kubernetes import KubernetesRunner

    data = yaml.safe_load((DATA / "katib-pbt.yaml").read_text())
    (error,) = KubernetesRunner.problems(load_spec(data))
    assert error.path == "spec.algorithm.algorithmName"
    assert "pbt is not supported with the Kubernetes runner" in error.message
