"""bayesianoptimization hands over to TPE past its trial cap, says so, and records it."""

from __future__ import annotations

import logging

import pytest

from tests.algorithms._support import param, quadratic, run, suggester
from tuner.algorithms import optuna_suggester


def test_gp_is_capped_and_the_switch_is_recorded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(optuna_suggester, "GP_MAX_TRIALS", 4)
    space = [param("x", "double", min="-5", max="5"), param("y", "double", min="-5", max="5")]
    s = suggester("bayesianoptimization", space, {"random_state": "1", "n_initial_points": "2"})
    with caplog.at_level(logging.WARNING, logger="tuner.algorithms.optuna_suggester"):
        history = run(s, rounds=6, batch=1, objective=quadratic)
    assert [t.attrs for t in history[:4]] == [{}] * 4
    assert all("GP capped at 4 trials" in str(t.attrs.get("sampler")) for t in history[4:])
    assert sum("GP cap" in r.message for r in caplog.records) == 1
