"""An experiment's trial history, kept in memory and caught up incrementally.

Every decision reads the history; reading all of it each time costs O(trials). A trial that
has finished never changes again, so catching up needs only the trials created since the last
read and the ones that were still active. The database stays the record: the cache is rebuilt
from it whenever a controller starts.

The cache is synchronous (it reads through :class:`~tuner.storage.Repository`): coroutine code
refreshes it on the database thread, ``await db.run(lambda _: cache.refresh())`` (see
:class:`tuner.storage.aio.AsyncRepository`).
"""

from __future__ import annotations

from tuner.lifecycle import Tally
from tuner.storage import Repository
from tuner.trials import Trial


class HistoryCache:
    def __init__(self, repo: Repository, experiment_id: int) -> None:
        self.repo = repo
        self.experiment_id = experiment_id
        self._trials: list[Trial] = []
        self._position: dict[str, int] = {}
        self._active: set[str] = set()
        """The trials not finished when last read: the only old ones that can change."""
        self._changed: list[Trial] = []
        self.tally = Tally()
        """The counts over every trial read, as of the last refresh."""

    def refresh(self) -> list[Trial]:
        """Every trial of the experiment, in creation order: the finished ones as stored now,
        the active ones as first read (a Running trial may still show as Created: only its
        ending changes a decision).

        Costs the new trials and those that finished since, not the whole history, nor the
        active trials (1,000 running trials, each ending in turn, would cost 1,000 x 1,000)."""
        last = self._trials[-1].number if self._trials else -1
        active = sorted(self._active)
        for trial in self.repo.history_delta(self.experiment_id, last, active, finished_only=True):
            position = self._position.get(trial.name)
            if position is None:
                self.tally.replace(None, trial)
                self._position[trial.name] = len(self._trials)
                self._trials.append(trial)
            else:
                self.tally.replace(self._trials[position], trial)
                self._trials[position] = trial
            self._changed.append(trial)
            if trial.state.finished:
                self._active.discard(trial.name)
            else:
                self._active.add(trial.name)
        return list(self._trials)

    def take_changed(self) -> list[Trial]:
        """The trials read (new or changed) by the refreshes since the last call: what can
        have changed a decision over the whole history, such as the best trial."""
        changed, self._changed = self._changed, []
        return changed
