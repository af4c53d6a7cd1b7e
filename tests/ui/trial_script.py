"""A trial for the dashboard tests: pushes a decreasing loss over a few steps, a little slowly.

loss = (x - 0.5)**2 + penalty(optimizer) + 0.5 / (step + 1); exits when asked to stop.
"""

import argparse
import time

import tuner

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--optimizer", required=True)
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--sleep", type=float, default=0.1)
args = parser.parse_args()

penalty = {"sgd": 0.3, "adam": 0.0, "ftrl": 0.6}[args.optimizer]
for step in range(args.steps):
    loss = (args.x - 0.5) ** 2 + penalty + 0.5 / (step + 1)
    if tuner.report(step=step, loss=loss, accuracy=1 / (1 + loss)):
        print(f"asked to stop at step {step}", flush=True)
        break
    print(f"pushed step {step}", flush=True)
    time.sleep(args.sleep)
