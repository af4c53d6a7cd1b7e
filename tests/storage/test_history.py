"""The incremental history matches a full read after any sequence of changes."""

from __future__ import annotations

from tests.helpers import experiment_dict
from tuner.history import HistoryCache
from tuner.lifecycle import Tally
from tuner.spec import load_spec
from tuner.storage import Repository
from tuner.trials import Observation, TrialState


def test_incremental_history_equals_a_full_read(repo: Repository) -> None:
    record = repo.create_experiment(load_spec(experiment_dict(maxTrialCount=10)))
    cache = HistoryCache(repo, record.id)
    assert cache.refresh() == []

    first = repo.create_trials(record, [({"x": 0.1, "n": 1}, {}), ({"x": 0.2, "n": 1}, {})])
    assert cache.refresh() == repo.history(record.id)

    repo.mark_running(record.id, first[0].name, "pid:1")
    repo.add_observations(record, first[0].name, [Observation("loss", 0, 0.5)])
    repo.finish_trial(record.id, first[0].name, TrialState.SUCCEEDED)
    repo.create_trials(record, [({"x": 0.3, "n": 2}, {})])
    history = cache.refresh()
    assert history == repo.history(record.id)
    assert history[0].state is TrialState.SUCCEEDED and history[0].objective == 0.5
    assert [t.number for t in history] == [0, 1, 2]

    repo.finish_trial(record.id, first[1].name, TrialState.FAILED, "Error")
    assert cache.refresh() == repo.history(record.id)


def test_the_counts_kept_per_change_equal_a_full_count(repo: Repository) -> None:
    """The controller decides on ``cache.tally`` instead of scanning the history."""
    record = repo.create_experiment(load_spec(experiment_dict(maxTrialCount=10)))
    cache = HistoryCache(repo, record.id)
    trials = repo.create_trials(record, [({"x": 0.1 * i, "n": 1}, {}) for i in range(5)])
    endings = [TrialState.SUCCEEDED, TrialState.FAILED, TrialState.METRICS_UNAVAILABLE]
    counts = []
    for trial, ending in zip(trials, endings, strict=False):
        repo.mark_running(record.id, trial.name, "pid:1")
        assert cache.tally == Tally.of(cache.refresh())
        repo.finish_trial(record.id, trial.name, ending, "Error")
        assert cache.tally == Tally.of(cache.refresh())
        cache.refresh()  # a finished trial read again counts once
        counts.append((cache.tally.total, cache.tally.active, cache.tally.finished))
    assert counts == [(5, 4, 1), (5, 3, 2), (5, 2, 3)]
    assert [t.state for t in cache.tally.failed] == endings[1:]


def test_history_read_in_pages_equals_a_full_read(repo: Repository) -> None:
    """What a controller's start-up reads page by page, curves included."""
    record = repo.create_experiment(load_spec(experiment_dict(maxTrialCount=10)))
    trials = repo.create_trials(record, [({"x": 0.1 * i, "n": 1}, {}) for i in range(7)])
    for i, trial in enumerate(trials[:5]):
        repo.mark_running(record.id, trial.name, "pid:1")
        repo.add_observations(
            record, trial.name, [Observation("loss", s, i + s / 10) for s in range(3)]
        )
        repo.finish_trial(record.id, trial.name, TrialState.SUCCEEDED)
    whole = repo.history(record.id, with_curves=True)
    pages, after = [], -1
    while page := repo.history(record.id, with_curves=True, after_number=after, limit=3):
        pages.append(page)
        after = page[-1].number
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [t for p in pages for t in p] == whole
    assert [t.curve for p in pages for t in p][4] == ((0, 4.0), (1, 4.1), (2, 4.2))


def test_the_changed_trials_are_handed_out_once(repo: Repository) -> None:
    record = repo.create_experiment(load_spec(experiment_dict(maxTrialCount=10)))
    cache = HistoryCache(repo, record.id)
    first = repo.create_trials(record, [({"x": 0.1, "n": 1}, {}), ({"x": 0.2, "n": 1}, {})])
    cache.refresh()
    repo.mark_running(record.id, first[0].name, "pid:1")
    cache.refresh()  # still active: not read again (only an ending changes a decision)
    assert [t.name for t in cache.take_changed()] == [first[0].name, first[1].name]
    repo.finish_trial(record.id, first[0].name, TrialState.SUCCEEDED)
    cache.refresh()
    changed = cache.take_changed()
    assert [(t.name, t.state) for t in changed if t.name == first[0].name] == [
        (first[0].name, TrialState.SUCCEEDED)
    ]
    cache.refresh()  # first[0] has finished: never read again
    assert first[0].name not in {t.name for t in cache.take_changed()}
    assert cache.take_changed() == []
