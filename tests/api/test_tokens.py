"""Trial tokens: derived from the server secret, so they survive restarts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.helpers import AUTH, V1, TestClient, ask_tell_dict, make_settings
from tuner.api.app import create_app
from tuner.errors import InvalidRequest
from tuner.tokens import SECRET_FILE, derive_trial_token, load_or_create_secret, tokens_equal


def test_the_secret_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "work" / SECRET_FILE
    secret = load_or_create_secret(path)
    assert len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == secret
    path.write_text("not hex")
    with pytest.raises(InvalidRequest, match="does not hold a hex secret"):
        load_or_create_secret(path)


def test_tokens_differ_per_trial_and_compare_safely() -> None:
    a = derive_trial_token(b"k", "uid-1", "exp-0000")
    assert a == derive_trial_token(b"k", "uid-1", "exp-0000")
    assert len({a, derive_trial_token(b"k", "uid-1", "exp-0001"),
                derive_trial_token(b"k", "uid-2", "exp-0000"),
                derive_trial_token(b"other", "uid-1", "exp-0000")}) == 4  # fmt: skip
    assert tokens_equal(a, a) and not tokens_equal(a, a[:-1]) and not tokens_equal("é", a)


def test_a_restarted_server_accepts_the_tokens_it_gave(tmp_path: Path) -> None:
    # The secret in a file out of the workdir (by default, the user's state directory).
    settings = make_settings(tmp_path, secret=None, secret_file=tmp_path / "state" / SECRET_FILE)
    with TestClient(create_app(settings), headers=AUTH) as c:
        c.post(f"{V1}/experiments", json=ask_tell_dict("lasting"))
        (trial,) = c.post(f"{V1}/experiments/lasting/suggestions", json={"count": 1}).json()[
            "trials"
        ]
    with TestClient(create_app(settings), headers=AUTH) as c:
        response = c.post(
            f"{V1}/experiments/lasting/trials/{trial['trial']}/observations",
            json={"step": 0, "metrics": {"loss": 1.0}},
            headers={"Authorization": f"Bearer {trial['token']}"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"should_stop": False, "ignored": []}
    assert (tmp_path / "state" / SECRET_FILE).is_file()
    assert not (tmp_path / "work" / SECRET_FILE).exists()  # trials are told the workdir's path
