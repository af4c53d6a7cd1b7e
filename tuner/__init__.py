"""tuner: hyperparameter tuning that runs Katib v1beta1 Experiment specs locally or on Kubernetes.

``import tuner`` stays light (no optuna, FastAPI, SQLAlchemy, pandas or pydantic), so that a
trial can call :func:`tuner.report` at the cost of a few milliseconds.
"""

# ``tuner.report`` is both a submodule and the function it defines. The submodule is loaded here,
# before anything else can import it, and the name is then bound to the function; importing
# ``tuner.report`` later does not rebind it. The module itself imports only the standard library
# and loads ``urllib.request`` on the first report.
from tuner.report import report

__all__ = ["report"]
