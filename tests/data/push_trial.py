"""A trial that pushes its metrics with ``tuner.report`` (Push collector).

loss = (x - 0.5)**2 + 0.1 * (steps - 1 - step) at each step, so the last step reports the true
value. --stop-when-asked exits as soon as a report answers "should stop".
"""

import argparse

import tuner

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--auto-step", action="store_true", help="let the server number the steps")
args = parser.parse_args()

loss = (args.x - 0.5) ** 2
for step in range(args.steps):
    value = loss + 0.1 * (args.steps - 1 - step)
    metrics = {"loss": value, "accuracy": 1 / (1 + value)}
    stop = tuner.report(**metrics) if args.auto_step else tuner.report(step=step, **metrics)
    if stop:
        print(f"asked to stop at step {step}", flush=True)
        break
    print(f"pushed step {step}", flush=True)
