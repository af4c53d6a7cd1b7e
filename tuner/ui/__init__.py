"""The web dashboard: server-rendered page shells, hand-written scripts, plotly for plots.

Pages hold no data: their scripts read everything from the REST API (``/api/v1``), sending the
API token as ``Authorization: Bearer`` when the server has one (see :mod:`tuner.ui.routes`).
"""
