"""A trial for leaderboard tests: prints ``<name>=<value>`` once.

With ``--x 0`` it prints the best value anyone will see, then crashes (exit 1): a leaderboard
must not crown it. Values carry float noise on purpose (``0.1 * x + 0.2``).
"""

import argparse
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=int, required=True)
parser.add_argument("--name", default="score")
args = parser.parse_args()

if args.x == 0:
    print(f"{args.name}=0.0001", flush=True)
    print("Traceback (most recent call last): out of memory", file=sys.stderr)
    sys.exit(1)
print(f"epoch=0 {args.name}={0.1 * args.x + 0.2!r}", flush=True)
