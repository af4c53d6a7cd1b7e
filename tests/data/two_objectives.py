"""A deterministic trial with two conflicting objectives (ZDT1 in two variables) and a third
metric for constraints. Prints ``f1=... f2=... size=...`` once."""

import argparse
import math

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--y", type=float, required=True)
args = parser.parse_args()

g = 1 + 9 * args.y
f1 = args.x
f2 = g * (1 - math.sqrt(f1 / g))
print(f"f1={f1!r} f2={f2!r} size={args.x + args.y!r}", flush=True)
