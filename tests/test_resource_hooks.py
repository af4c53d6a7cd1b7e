"""Service.submit and Service.delete call the resource hooks (``tuner serve --runner kubernetes``
gives REST experiments their Experiment resource so; the real hooks run against a control plane
in tests/k8s/test_leader.py). Here a recording test double stands in for the cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.helpers import ask_tell_dict, make_settings
from tuner.errors import Conflict
from tuner.service import Service
from tuner.spec import Experiment, load_spec
from tuner.storage import ExperimentRecord


class RecordingHooks:
    """Test double of :class:`tuner.operator.mirror.ResourceMirror`: records, annotates."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def before_store(self, experiment: Experiment) -> Experiment:
        self.calls.append(("before_store", experiment.name))
        data = experiment.dump()
        data["metadata"].setdefault("annotations", {})["test/resource"] = "made"
        return load_spec(data)

    async def store_failed(self, experiment: Experiment) -> None:
        assert experiment.metadata.annotations["test/resource"] == "made"
        self.calls.append(("store_failed", experiment.name))

    async def after_delete(self, record: ExperimentRecord) -> None:
        self.calls.append(("after_delete", record.name))


def test_submit_and_delete_call_the_resource_hooks(tmp_path: Path) -> None:
    hooks = RecordingHooks()
    service = Service(make_settings(tmp_path, resource_hooks=hooks))

    async def scenario() -> None:
        await service.start()
        try:
            record = await service.submit(load_spec(ask_tell_dict("mirrored")))
            # What is stored is what the hook returned (for Kubernetes: the resource's uid).
            assert record.experiment.metadata.annotations["test/resource"] == "made"
            with pytest.raises(Conflict):  # not stored: the hook undoes what it made
                await service.submit(load_spec(ask_tell_dict("mirrored")))
            await service.delete(record)
        finally:
            await service.close()

    asyncio.run(scenario())
    assert hooks.calls == [
        ("before_store", "mirrored"),
        ("before_store", "mirrored"),
        ("store_failed", "mirrored"),
        ("after_delete", "mirrored"),
    ]
