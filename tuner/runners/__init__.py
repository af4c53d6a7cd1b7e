"""Runners: local processes (default) and Kubernetes Jobs."""

from tuner.runners.base import Runner, TrialHandle, TrialOutcome

__all__ = ["Runner", "TrialHandle", "TrialOutcome"]
