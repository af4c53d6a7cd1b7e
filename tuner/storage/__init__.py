"""Persistence: the database is the record of every experiment, trial and observation."""

from tuner.storage.engine import default_url, make_engine
from tuner.storage.repository import ExperimentRecord, Repository

__all__ = ["ExperimentRecord", "Repository", "default_url", "make_engine"]
