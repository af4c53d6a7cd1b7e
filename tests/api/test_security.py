"""What keeps other web pages, guessers and stale tokens out (tuner.api.guards, attempts, tokens).

Most checks run on the in-process app; the default API token is checked on a real `tuner serve`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import API_TOKEN, AUTH, V1, TestClient, ask_tell_dict, make_settings, run_tuner
from tests.servers import start_server, stop_server
from tuner.api.app import create_app
from tuner.api.attempts import LIMIT, FailedAttempts
from tuner.api.guards import allowed_hosts
from tuner.client import Client
from tuner.errors import TooManyAttempts
from tuner.tokens import (
    API_TOKEN_FILE,
    SECRET_FILE,
    default_secret_path,
    load_or_create_api_token,
)

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture
def open_client(tmp_path: Path) -> Iterator[TestClient]:
    """An app WITHOUT an API token (the issue's case), bound to loopback: only the guards
    stand between a web page and the commands of its specs."""
    settings = make_settings(
        tmp_path, api_token=None, allowed_hosts=allowed_hosts("127.0.0.1", also=["127.0.0.1"])
    )
    with TestClient(create_app(settings), base_url=LOCAL) as c:
        yield c


def experiment_names(client: TestClient) -> list[str]:
    response = client.get(f"{V1}/experiments")
    assert response.status_code == 200, response.text
    return [e["metadata"]["name"] for e in response.json()]


def test_bodies_must_be_json_or_yaml(open_client: TestClient) -> None:
    body = json.dumps(ask_tell_dict("forged")).encode()
    # What fetch(url, {mode: "no-cors", body: new Blob([json])}) sends: no Content-Type.
    no_type = open_client.post(f"{V1}/experiments", content=body)
    assert no_type.status_code == 415, no_type.text
    assert "unsupported Content-Type '(none)'" in no_type.json()["detail"]
    for media in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
        refused = open_client.post(
            f"{V1}/experiments", content=body, headers={"Content-Type": media}
        )
        assert refused.status_code == 415, (media, refused.text)
    assert experiment_names(open_client) == []
    accepted = open_client.post(
        f"{V1}/experiments", content=body, headers={"Content-Type": "application/json"}
    )
    assert accepted.status_code == 201, accepted.text
    assert experiment_names(open_client) == ["forged"]


def test_other_host_names_and_origins_are_refused(open_client: TestClient) -> None:
    spec = ask_tell_dict("rebound")
    # DNS rebinding: evil.example now resolves to 127.0.0.1; the Host header still says so.
    rebound = open_client.post(
        f"{V1}/experiments", json=spec, headers={"Host": "evil.example:8000"}
    )
    assert rebound.status_code == 403, rebound.text
    assert "DNS rebinding" in rebound.json()["detail"]
    assert open_client.get("/", headers={"Host": "evil.example"}).status_code == 403
    cross = open_client.post(
        f"{V1}/experiments", json=spec, headers={"Origin": "http://127.0.0.1:9999"}
    )
    assert cross.status_code == 403 and "cross-origin" in cross.json()["detail"], cross.text
    sandboxed = open_client.post(f"{V1}/experiments", json=spec, headers={"Origin": "null"})
    assert sandboxed.status_code == 403, sandboxed.text
    assert experiment_names(open_client) == []
    for host in ("localhost:8000", "[::1]:8000", "127.0.0.1"):
        assert open_client.get("/healthz", headers={"Host": host}).status_code == 200, host
    same = open_client.post(f"{V1}/experiments", json=spec, headers={"Origin": LOCAL})
    assert same.status_code == 201, same.text


def test_no_cors_headers_and_security_headers_everywhere(open_client: TestClient) -> None:
    preflight = open_client.options(
        f"{V1}/experiments",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    api = open_client.get(f"{V1}/experiments", headers={"Origin": "http://evil.example"})
    for response in (preflight, api):
        assert not any(k.lower().startswith("access-control-") for k in response.headers)
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert preflight.status_code >= 400


def test_dashboard_pages_send_a_content_security_policy(open_client: TestClient) -> None:
    for path in ("/", "/ui/login", "/ui/experiments/default/x"):
        page = open_client.get(path)
        assert page.status_code == 200, path
        csp = {
            d.split()[0]: d.split()[1:] for d in page.headers["content-security-policy"].split("; ")
        }
        assert csp["script-src"] == ["'self'", "'unsafe-eval'"], csp  # no inline script
        assert csp["frame-ancestors"] == ["'none'"], csp
        assert csp["object-src"] == ["'none'"] and csp["default-src"] == ["'self'"]
        assert page.headers["x-frame-options"] == "DENY"


def test_login_is_rate_limited_per_address(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as c:
        for _ in range(LIMIT):
            assert c.post("/ui/login", json={"token": "guess"}).status_code == 403
        blocked = c.post("/ui/login", json={"token": API_TOKEN})  # even the right one
        assert blocked.status_code == 429, blocked.text
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        assert "too many wrong tokens" in blocked.json()["detail"]
        # The API's bearer check is the same door: no guessing there instead.
        assert c.get(f"{V1}/experiments", headers=AUTH).status_code == 429
    with TestClient(create_app(make_settings(tmp_path / "other"))) as c:
        assert c.post("/ui/login", json={"token": API_TOKEN}).status_code == 204


def test_failed_attempts_count_per_address_and_expire() -> None:
    attempts = FailedAttempts(limit=3, window=0.5)
    for _ in range(3):
        attempts.check("10.0.0.1")
        attempts.failed("10.0.0.1")
    with pytest.raises(TooManyAttempts) as blocked:
        attempts.check("10.0.0.1")
    assert blocked.value.retry_after == 1
    attempts.check("10.0.0.2")  # another address is not blocked
    attempts._failures["10.0.0.1"] = type(attempts._failures["10.0.0.1"])(
        [t - 1 for t in attempts._failures["10.0.0.1"]], maxlen=3
    )  # the failures as if made a second ago: out of the window
    attempts.check("10.0.0.1")


def test_a_deleted_experiments_tokens_do_not_work_for_its_successor(tmp_path: Path) -> None:
    def ask(c: TestClient) -> dict[str, Any]:
        response = c.post(f"{V1}/experiments/reborn/suggestions", json={"count": 1})
        assert response.status_code == 200, response.text
        trial: dict[str, Any] = response.json()["trials"][0]
        return trial

    def push(c: TestClient, trial: str, token: str) -> int:
        return c.post(
            f"{V1}/experiments/reborn/trials/{trial}/observations",
            json={"step": 0, "metrics": {"loss": 1.0}},
            headers={"Authorization": f"Bearer {token}"},
        ).status_code

    with TestClient(create_app(make_settings(tmp_path)), headers=AUTH) as c:
        assert c.post(f"{V1}/experiments", json=ask_tell_dict("reborn")).status_code == 201
        old = ask(c)
        assert c.delete(f"{V1}/experiments/reborn").status_code in (200, 204)
        assert c.post(f"{V1}/experiments", json=ask_tell_dict("reborn")).status_code == 201
        new = ask(c)
        assert new["trial"] == old["trial"]  # the same name: only the experiment's uid differs
        assert new["token"] != old["token"]
        assert push(c, old["trial"], old["token"]) == 403
        assert push(c, new["trial"], new["token"]) == 200


def test_the_secret_lives_in_the_state_directory_not_the_workdir(
    tmp_path: Path, private_state_dir: Path
) -> None:
    settings = make_settings(tmp_path, secret=None)
    with TestClient(create_app(settings), headers=AUTH) as c:
        assert c.get("/healthz").status_code == 200
    path = default_secret_path()
    assert path.parent == private_state_dir / "tuner"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(settings.workdir.rglob(SECRET_FILE))


def test_the_default_token_file_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "tuner" / API_TOKEN_FILE
    token, new = load_or_create_api_token(path)
    assert new and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_api_token(path) == (token, False)


def test_serve_makes_a_token_by_default_prints_it_once_and_clients_find_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url = f"sqlite:///{tmp_path / 'tuner.db'}"
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))  # for the server, the CLI and Client
    server = start_server(tmp_path, db_url, default_token=True, env={"XDG_STATE_HOME": str(state)})
    try:
        path = state / "tuner" / API_TOKEN_FILE
        token = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        log = server.log.read_text()
        assert log.count(token) == 1, log  # printed once, at start
        assert httpx.get(f"{server.url}{V1}/experiments").status_code == 401
        with Client(server.url) as client:  # the token file, found: a loopback server
            client.submit(ask_tell_dict("found"))
        listed = run_tuner("list", "--server", server.url, cwd=tmp_path)
        assert listed.returncode == 0 and "found" in listed.stdout, listed.stderr
        assert "TUNER_API_TOKEN" not in os.environ
        with Client("http://tuner.example:8000") as remote:  # never sent to another host
            assert "authorization" not in remote._http.headers
    finally:
        stop_server(server)
    assert server.log.read_text().count(token) == 1
