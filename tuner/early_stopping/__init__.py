"""Early-stopping rules: should a running trial stop now, given every other trial?

The contract (:class:`~tuner.early_stopping.base.EarlyStoppingRule`, :class:`StopDecision`)
and the behaviour every rule shares are in :mod:`tuner.early_stopping.base`; each rule is one
module (median, asha, hyperband, percentile, threshold, wilcoxon, patience) with its rules on
the class; :mod:`tuner.early_stopping.registry` names them and parses their settings.
:mod:`tuner.early_stopping.incremental` keeps a rule's view of the finished trials up to date
per report, so that the controller's decisions cost the same at the 10,000th trial as at the
first.
"""

from tuner.early_stopping.asha import AshaRule
from tuner.early_stopping.base import CONTINUE, EarlyStoppingRule, StopDecision
from tuner.early_stopping.hyperband import HyperbandRule
from tuner.early_stopping.incremental import StoppingState
from tuner.early_stopping.median import MedianStopRule
from tuner.early_stopping.patience import PatienceRule
from tuner.early_stopping.percentile import PercentileRule
from tuner.early_stopping.registry import create_rule, rule_names, validate_early_stopping
from tuner.early_stopping.threshold import ThresholdRule
from tuner.early_stopping.wilcoxon import WilcoxonRule

__all__ = [
    "CONTINUE",
    "AshaRule",
    "EarlyStoppingRule",
    "HyperbandRule",
    "MedianStopRule",
    "PatienceRule",
    "PercentileRule",
    "StopDecision",
    "StoppingState",
    "ThresholdRule",
    "WilcoxonRule",
    "create_rule",
    "rule_names",
    "validate_early_stopping",
]
