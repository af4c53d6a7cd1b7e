"""The service's optional runner hooks: ``check`` at submit (422) and ``cleanup`` at delete."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from tests.helpers import AUTH, V1, experiment_dict, make_settings
from tuner.api.app import create_app
from tuner.errors import FieldError, SpecError
from tuner.runners.local import LocalRunner
from tuner.spec import Experiment
from tuner.templates import RESOURCE_UID_ANNOTATION

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class VettingRunner(LocalRunner):
    """A local runner that refuses experiments named ``refused`` and records cleanups."""

    def __init__(self, workdir: Path, **kwargs: Any) -> None:
        super().__init__(workdir, **kwargs)
        self.cleaned: list[str] = []

    def check(self, experiment: Experiment) -> None:
        if experiment.name == "refused":
            raise SpecError([FieldError("metadata.name", "this runner refuses it")])

    async def cleanup(self, experiment: Experiment) -> None:
        self.cleaned.append(experiment.name)


def test_runner_check_rejects_at_submit_and_cleanup_runs_at_delete(tmp_path: Path) -> None:
    runner = VettingRunner(tmp_path / "work")
    settings = make_settings(tmp_path, runner=runner)
    with TestClient(create_app(settings), headers=AUTH) as client:
        refused = client.post(f"{V1}/experiments", json=experiment_dict("refused"))
        assert refused.status_code == 422
        assert refused.json()["errors"] == [
            {"path": "metadata.name", "message": "this runner refuses it"}
        ]
        assert client.get(f"{V1}/experiments/refused").status_code == 404

        assert client.post(f"{V1}/experiments", json=experiment_dict("kept")).status_code == 201
        assert client.delete(f"{V1}/experiments/kept").status_code == 204
    assert runner.cleaned == ["kept"]


def test_the_resource_uid_annotation_is_the_operators_only(tmp_path: Path) -> None:
    data = experiment_dict("forged")
    data["metadata"]["annotations"] = {RESOURCE_UID_ANNOTATION: "1234"}
    with TestClient(create_app(make_settings(tmp_path)), headers=AUTH) as client:
        response = client.post(f"{V1}/experiments", json=data)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == (
        f"metadata.annotations.{RESOURCE_UID_ANNOTATION}"
    )
