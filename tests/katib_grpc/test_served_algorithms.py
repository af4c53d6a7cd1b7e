"""Every tuner algorithm answers the same over Katib's Suggestion API as in process: the same
seeded suggestions, round after round, from the same history (real gRPC, in this process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.algorithms._support import (
    ALGORITHMS,
    FAST,
    MIXED,
    MIXED_GRID,
    loss,
    make_spec,
    point,
    run,
    skip_without_dependency,
)
from tests.katib_grpc.services import require_grpc

require_grpc()

from tuner.algorithms.registry import create_suggester  # noqa: E402
from tuner.katib_grpc.remote import RemoteSuggester  # noqa: E402
from tuner.katib_grpc.suggestion_service import start_server  # noqa: E402


@pytest.fixture(params=ALGORITHMS)
def algorithm(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    skip_without_dependency(name)
    yield name


def test_a_served_algorithm_suggests_what_it_suggests_in_process(algorithm: str) -> None:
    settings = dict(FAST.get(algorithm, {}))
    if algorithm != "grid":
        settings["random_state"] = "11"
    spec = make_spec(algorithm, MIXED_GRID if algorithm == "grid" else MIXED, settings)
    server, port = start_server(algorithm, "127.0.0.1", 0)
    try:
        remote = RemoteSuggester(f"127.0.0.1:{port}", spec.study, timeout=30)
        served = run(remote, rounds=3, batch=2, objective=loss)
        local = run(create_suggester(spec), rounds=3, batch=2, objective=loss)
    finally:
        server.stop(grace=None)
    assert len(served) == (5 if algorithm == "pbt" else 6)  # pbt: one generation of 5
    assert [point(t.parameters) for t in served] == [point(t.parameters) for t in local]
    assert [t.attrs for t in served] == [t.attrs for t in local]
