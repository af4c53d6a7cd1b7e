"""A trial that reports as Katib users' trials do: ``kubeflow.katib.report_metrics``, from the
unmodified Katib SDK (run with the SDK venv's interpreter), to the DB-manager at
``$DB_MANAGER_ADDRESS``. loss = (x - 0.5)**2 + 0.1 * (steps left), one report per step."""

import argparse
import os

from kubeflow.katib import report_metrics

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--steps", type=int, default=3)
args = parser.parse_args()

for step in range(args.steps):
    loss = (args.x - 0.5) ** 2 + 0.1 * (args.steps - 1 - step)
    report_metrics(
        {"loss": loss, "accuracy": 1 / (1 + loss)},
        db_manager_address=os.environ["DB_MANAGER_ADDRESS"],
        timeout=10,
    )
print("reported", args.steps, "steps")
