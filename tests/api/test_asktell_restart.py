"""Ask/tell survives a notebook restart, against a real `tuner serve`: a new client lists the
open trials another client asked for and tells them by name (with and without an API token),
and an asked trial that is never told expires and frees its slot."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ask_tell_dict
from tests.servers import Server, start_server, stop_server
from tests.waiting import wait_for
from tuner.client import Client
from tuner.errors import Conflict, Unauthorized

TOKEN = "restart-test-token"
ASK_TIMEOUT = 3.0


@pytest.fixture(scope="module", params=[None, TOKEN], ids=["open", "token"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str | None]]:
    """A server without API token (loopback) and one with."""
    token: str | None = request.param
    tmp = tmp_path_factory.mktemp("asktell")
    running = start_server(tmp, f"sqlite:///{tmp / 'asktell.db'}", token)
    yield running, token
    stop_server(running)


def test_a_new_client_tells_the_open_trials_by_name(
    served: tuple[Server, str | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, token = served
    # Nothing but the URL and the token given: neither $TUNER_API_TOKEN nor a default token
    # file another test may have left in the session's state directory, which a client on
    # loopback would send (tuner/client.py); with pytest-xdist the order of tests varies.
    monkeypatch.delenv("TUNER_API_TOKEN", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def new_client() -> Client:
        """A client as a fresh notebook makes it: nothing remembered but the URL (and token)."""
        return Client(server.url, token)

    first = new_client()
    first.submit(ask_tell_dict("restart", parallelTrialCount=2, maxTrialCount=2))
    asked = first.ask("restart", count=2)
    assert len(asked) == 2
    assert first.report("restart", asked[0], {"loss": 3.0}, step=0) is False
    first.close()
    del first  # the notebook's kernel restarts: the trial tokens are gone

    if token is not None:  # the open trials and their tokens are for API token holders only
        with Client(server.url, "") as stranger, pytest.raises(Unauthorized):
            stranger.open_trials("restart")
    second = new_client()
    open_trials = second.open_trials("restart")
    assert [t.name for t in open_trials] == [t.name for t in asked]
    assert [t.parameters for t in open_trials] == [t.parameters for t in asked]
    assert all(t.token for t in open_trials)
    second.close()

    third = new_client()  # by name only, without listing first
    for trial in asked:
        told = third.tell("restart", trial.name, {"loss": 1.0, "accuracy": 0.5})
        assert told["status"] == "Succeeded"
    assert third.open_trials("restart") == []
    with pytest.raises(Conflict, match=r"not open|already finished"):
        third.tell("restart", asked[0].name, {"loss": 1.0})
    final = third.wait("restart", progress=False, timeout=30)
    assert final["status"]["phase"] == "Succeeded"
    third.close()


@pytest.fixture(scope="module")
def expiring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("expiring")
    running = start_server(
        tmp, f"sqlite:///{tmp / 'expiry.db'}", args=["--ask-timeout", str(ASK_TIMEOUT)]
    )
    yield running
    stop_server(running)


def test_an_asked_trial_never_told_expires_and_frees_its_slot(expiring: Server) -> None:
    client = Client(expiring.url, None)
    client.submit(
        ask_tell_dict("lost", parallelTrialCount=1, maxTrialCount=3, maxFailedTrialCount=0)
    )
    (lost,) = client.ask("lost")
    assert client.ask("lost") == []  # the one slot is taken

    def expired() -> dict[str, object] | None:
        trial = client.trial("lost", lost.name)
        return trial if trial["status"] == "Killed" else None

    trial = wait_for(expired, "the unanswered ask to expire", timeout=60)
    conditions = trial["conditions"]
    assert isinstance(conditions, list)
    assert conditions[-1]["type"] == "Killed" and conditions[-1]["reason"] == "AskExpired"
    assert "ask timeout" in str(trial["reason"])
    # Its slot is free again, and it is no failure: maxFailedTrialCount 0 is not exceeded.
    (again,) = wait_for(lambda: client.ask("lost"), "a new trial in the freed slot", timeout=30)
    assert again.name != lost.name
    assert client.get("lost")["status"]["phase"] == "Running"
    with pytest.raises(Conflict, match="AskExpired"):
        client.tell("lost", lost, {"loss": 1.0})
    # Reports keep an asked trial alive past the timeout (a heartbeat); a tell completes it.
    asked_at = time.monotonic()
    step = 0
    while time.monotonic() - asked_at < ASK_TIMEOUT + 1.5:
        assert client.report("lost", again, {"loss": 1.0}, step=step) is False
        step += 1
        time.sleep(0.3)  # time passing is the point here, not a state to wait for
    assert client.tell("lost", again, {"loss": 0.5})["status"] == "Succeeded"
    client.close()


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_a_bad_ask_timeout_is_a_usage_error(value: str) -> None:
    from tests.test_cli import tuner

    result = tuner("serve", "--ask-timeout", value, "--port", "1")
    assert result.returncode == 2
    assert "--ask-timeout must be a positive number of seconds" in result.stderr
    assert "Traceback" not in result.stderr
