"""A deterministic trial for tests: loss = (x - 0.5)**2, reported once per step.

Options make it misbehave on purpose: --fail exits non-zero, --silent reports nothing,
--sleep waits between steps (for stop tests), --file writes metrics to a file instead.
"""

import argparse
import json
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--steps", type=int, default=1)
parser.add_argument("--fail", action="store_true")
parser.add_argument("--silent", action="store_true")
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--file")
parser.add_argument("--json", action="store_true")
args = parser.parse_args()

loss = (args.x - 0.5) ** 2
for step in range(args.steps):
    # The loss improves a little each step and ends at the true value.
    value = loss + 0.1 * (args.steps - 1 - step)
    line = f"epoch={step} loss={value!r} accuracy={1 / (1 + value)!r}"
    if args.silent:
        print("training quietly")
    elif args.file:
        with open(args.file, "a") as f:
            if args.json:
                f.write(json.dumps({"loss": value, "step": step}) + "\n")
            else:
                f.write(line + "\n")
    else:
        print(line, flush=True)
    if args.sleep:
        time.sleep(args.sleep)
if args.fail:
    print("boom", file=sys.stderr)
    sys.exit(3)
