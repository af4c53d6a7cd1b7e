"""Installation identity on Kubernetes objects, as plain data: every Job and its pods carry the
installation's label, a named installation's Job names start with its name (the default keeps
the names it always had), and an object belongs to exactly one installation."""

from __future__ import annotations

from tests.helpers import experiment_dict
from tuner.k8s.jobs import (
    INSTALLATION_LABEL,
    installation_selector,
    is_ours,
    job_manifest,
    job_name,
)
from tuner.spec import load_spec
from tuner.templates import TRIAL_LABEL, render_trial
from tuner.trials import Trial


def test_jobs_and_pods_carry_the_installation_and_named_ones_get_their_own_names() -> None:
    experiment = load_spec(experiment_dict("exp"))
    trial = Trial(name="exp-0001", number=1, parameters={"x": 1.0, "n": 2})
    rendered = render_trial(experiment, trial)
    default = job_manifest(experiment, trial, rendered, {})
    blue = job_manifest(experiment, trial, rendered, {}, installation="blue")
    assert default["metadata"]["name"] == job_name(experiment, trial) == "exp-0001"
    assert blue["metadata"]["name"] == job_name(experiment, trial, "blue") == "blue-exp-0001"
    for job, installation in ((default, "default"), (blue, "blue")):
        pod_labels = job["spec"]["template"]["metadata"]["labels"]
        for labels in (job["metadata"]["labels"], pod_labels):
            assert labels[INSTALLATION_LABEL] == installation
            assert labels[TRIAL_LABEL] == job["metadata"]["name"]
    long_name = job_name(experiment, trial, "x" * 70)
    assert len(long_name) <= 63 and long_name != job_name(experiment, trial, "y" * 70)


def test_an_object_belongs_to_one_installation() -> None:
    def labelled(value: str | None) -> dict[str, object]:
        return {"metadata": {"labels": {INSTALLATION_LABEL: value} if value else {}}}

    assert is_ours(labelled("blue"), "blue") and not is_ours(labelled("blue"), "default")
    assert not is_ours(labelled("green"), "blue")
    # Objects from before installations had names belong to the default one only.
    assert is_ours(labelled(None), "default") and not is_ours(labelled(None), "blue")
    assert is_ours({"metadata": {}}, "default")
    assert installation_selector("blue") == f"{INSTALLATION_LABEL}=blue"
    assert installation_selector("default") is None
