"""Names shared across process boundaries: ``TUNER_*`` environment variables and HTTP headers.

Stdlib only, with nothing but constants: :mod:`tuner.report` (imported by every training
script) reads them, so this module must stay free of heavy imports.
"""

from __future__ import annotations

# -- environment a trial process gets ------------------------------------------------------
ENV_API_URL = "TUNER_API_URL"
"""The URL trials reach the API at (also ``tuner serve``'s default for it)."""
ENV_NAMESPACE = "TUNER_NAMESPACE"
ENV_EXPERIMENT = "TUNER_EXPERIMENT"
ENV_TRIAL = "TUNER_TRIAL"
ENV_KATIB_TRIAL = "KATIB_TRIAL_NAME"
"""The trial's name as Katib gives it to trials (``kubeflow.katib.report_metrics`` reads it)."""
ENV_TRIAL_TOKEN = "TUNER_TRIAL_TOKEN"
"""The per-trial push token (HMAC of the server secret, see :mod:`tuner.tokens`)."""
ENV_TRIAL_DIR = "TUNER_TRIAL_DIR"
"""The local runner's private directory of one trial."""
ENV_REPORT_RETRY_SECONDS = "TUNER_REPORT_RETRY_SECONDS"
"""How long ``tuner.report`` retries an unreachable or unavailable server (default 120 s)."""
ENV_SIDECAR = "TUNER_SIDECAR"
"""Set in the metrics-collector sidecar of a Kubernetes trial, so that it never takes its own
processes for the trial's (:mod:`tuner.collectors.relay`)."""
ENV_COLLECTOR_IMAGE = "TUNER_COLLECTOR_IMAGE"
"""``tuner serve --collector-image``'s default: the image of the metrics-collector sidecar."""

# -- environment the service and the command line read -------------------------------------
ENV_DATABASE_URL = "TUNER_DATABASE_URL"
ENV_API_TOKEN = "TUNER_API_TOKEN"
ENV_SECRET = "TUNER_SECRET"
ENV_SERVER = "TUNER_SERVER"
ENV_INSTALLATION = "TUNER_INSTALLATION"
"""``tuner serve --installation``'s default: the label that tells this installation's objects."""

# -- HTTP ----------------------------------------------------------------------------------
HEADER_AUTHORIZATION = "Authorization"
HEADER_TRIAL_TOKEN = "X-Tuner-Trial-Token"
"""A trial's token, for clients that also send an API token in ``Authorization``."""
