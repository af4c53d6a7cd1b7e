"""The metrics collectors' former home, kept so that ``tuner.metrics`` imports keep working.

Everything now lives in :mod:`tuner.collectors` (one module per collector kind).
"""

from __future__ import annotations

from tuner.collectors import (
    DEFAULT_FILTER,
    STEP_KEYS,
    UNKNOWN_SAMPLES,
    Clock,
    FileTailer,
    JsonLineParser,
    LineParser,
    MetricsParser,
    parse_rfc3339,
    parser_for,
    utcnow,
)

__all__ = [
    "DEFAULT_FILTER",
    "STEP_KEYS",
    "UNKNOWN_SAMPLES",
    "Clock",
    "FileTailer",
    "JsonLineParser",
    "LineParser",
    "MetricsParser",
    "parse_rfc3339",
    "parser_for",
    "utcnow",
]
