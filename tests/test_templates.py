"""Rendering trials from templates, and the builder of Job templates for specs made in Python."""

from __future__ import annotations

from tests.helpers import experiment_dict
from tuner.spec import load_spec
from tuner.templates import job_trial_template, render_trial
from tuner.trials import Trial


def test_built_template_validates_and_renders_literally() -> None:
    template = job_trial_template(
        ["python3", "train.py", "--x=${trialParameters.x}", "--n=${trialParameters.n}"],
        ["x", "n"],
        image="python:3.11-slim",
        container="trainer",
        backoff_limit=0,
    )
    experiment = load_spec(experiment_dict(trialTemplate=template))
    trial = Trial(name="exp-0007", number=7, parameters={"x": 0.25, "n": 2})
    rendered = render_trial(experiment, trial)
    assert rendered.argv == ["python3", "train.py", "--x=0.25", "--n=2"]
    assert rendered.container_name == "trainer"
    assert rendered.job["spec"]["backoffLimit"] == 0
    assert rendered.job["metadata"]["name"] == "exp-0007"
    assert rendered.job["metadata"]["labels"]["tuner.dev/trial"] == "exp-0007"
