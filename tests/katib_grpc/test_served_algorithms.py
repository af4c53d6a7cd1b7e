"""Every tuner algorithm answers the same over Katib's Suggestion API as in process: the same
seeded suggestions, round after round, from the same history (real gRPC, in this process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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

from tuner.algorithms.multi_choice import MULTI_OBJECTIVE_ONLY  # noqa: E402
from tuner.algorithms.registry import create_suggester  # noqa: E402
from tuner.katib_grpc.remote import RemoteSuggester  # noqa: E402
from tuner.katib_grpc.suggestion_service import start_server  # noqa: E402


# Katib's Suggestion API carries one objective, so algorithms that need several are not served.
@pytest.fixture(params=[a for a in ALGORITHMS if a not in MULTI_OBJECTIVE_ONLY])
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


def test_a_bad_request_is_invalid_argument_with_the_field() -> None:
    import grpc

    from tuner.katib_grpc.convert import experiment_message, trial_message
    from tuner.katib_grpc.protos import api
    from tuner.trials import Trial

    m, services = api()
    spec = make_spec("random", MIXED)
    good = experiment_message(m, "bad", spec.study, {})
    no_type = m.Experiment()
    no_type.CopyFrom(good)
    no_type.spec.objective.type = 0
    partial = Trial(name="bad-0000", number=0, parameters={"units": 8})
    server, port = start_server("random", "127.0.0.1", 0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = services.SuggestionStub(channel)
            cases = [
                (
                    stub.ValidateAlgorithmSettings,
                    m.ValidateAlgorithmSettingsRequest(experiment=no_type),
                    "spec.objective.type: must be MINIMIZE or MAXIMIZE",
                ),
                (
                    stub.GetSuggestions,
                    m.GetSuggestionsRequest(
                        experiment=good,
                        trials=[trial_message(m, partial, good.spec.objective)],
                        current_request_number=1,
                    ),
                    "trials: KeyError('lr')",
                ),
            ]
            for call, request, message in cases:
                with pytest.raises(grpc.RpcError) as failure:
                    call(request, timeout=10)
                error: Any = failure.value
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert message in error.details()
    finally:
        server.stop(grace=None)
