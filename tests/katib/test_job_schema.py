"""The Job structure that validation checks templates against (tuner/spec/job_schema.json)."""

from __future__ import annotations

import importlib.util
import io
import json
from contextlib import redirect_stdout
from importlib import resources

import pytest

from tuner.spec.jobschema import job_structure_errors

PATH = "spec.trialTemplate.trialSpec"


def job(**container: object) -> dict[str, object]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "containers": [{"name": "c", "image": "i", **container}],
                    "restartPolicy": "Never",
                },
            },
        },
    }


def test_a_katib_style_job_is_accepted() -> None:
    assert (
        job_structure_errors(
            job(
                command=["python3", "--lr=${trialParameters.lr}"],
                env=[{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                resources={"limits": {"nvidia.com/gpu": 1, "memory": "1Gi"}},
                ports=[{"containerPort": 8080}],
            ),
            PATH,
        )
        == []
    )


def test_unknown_fields_and_wrong_shapes_are_named_by_path() -> None:
    errors = job_structure_errors(job(imagee="x", command="python3 train.py", env={"A": "1"}), PATH)
    assert {e.path: e.message for e in errors} == {
        f"{PATH}.spec.template.spec.containers[0].imagee": "unknown field of Container",
        f"{PATH}.spec.template.spec.containers[0].command": "must be a list (got str)",
        f"{PATH}.spec.template.spec.containers[0].env": "must be a list (got a mapping)",
    }


@pytest.mark.skipif(
    importlib.util.find_spec("kubernetes") is None, reason="needs the kubernetes extra"
)
def test_the_shipped_table_is_what_the_installed_client_generates() -> None:
    """Regenerate with ``python -m tuner.k8s.schema_gen > tuner/spec/job_schema.json``."""
    from tuner.k8s import schema_gen

    out = io.StringIO()
    with redirect_stdout(out):
        schema_gen.main()
    shipped = resources.files("tuner.spec").joinpath("job_schema.json").read_text()
    generated, expected = json.loads(out.getvalue()), json.loads(shipped)
    # A newer client may know newer fields; every field shipped must still be there.
    for model, fields in expected["types"].items():
        assert set(fields) <= set(generated["types"].get(model, {})), model
