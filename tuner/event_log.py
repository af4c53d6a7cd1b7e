"""Every experiment and trial event of ``tuner serve`` in its log, one line each, at INFO."""

from __future__ import annotations

import logging

from tuner.events import DELETED, Event

log = logging.getLogger("tuner.service")  # the name operators filter on since the first round

_TRIAL_VERBS = {"Running": "started", "EarlyStopped": "early-stopped"}
_EXPERIMENT_VERBS = {"Created": "created", "Running": "started", DELETED: "deleted"}


class EventLog:
    """Every experiment and trial event of this process in the server log, at INFO.

    An experiment's phase is logged when it changes: the service and the controller both
    announce the start of one.
    """

    def __init__(self) -> None:
        self._phases: dict[tuple[str, str], str | None] = {}

    def __call__(self, event: Event) -> None:
        where = f"experiment {event.namespace}/{event.experiment}"
        why = f": {event.reason}" if event.reason else ""
        if event.kind == "best":
            log.info("%s: best objective improved to %s", where, event.value)
        elif event.kind == "trial":
            verb = _TRIAL_VERBS.get(event.state or "", f"ended {event.state}")
            log.info("%s: trial %s %s%s", where, event.trial, verb, why)
        elif self._phases.get((event.namespace, event.experiment)) != event.state:
            self._phases[(event.namespace, event.experiment)] = event.state
            verb = _EXPERIMENT_VERBS.get(event.state or "", f"ended {event.state}")
            log.info("%s: %s%s", where, verb, why)
