"""A toy for population-based training: accuracy grows fastest at a learning rate that depends
on the accuracy reached, so only a trial that resumes from a good checkpoint keeps improving.

The learning rate that helps most rises from 0.002 at accuracy 0 to 0.01 at accuracy 0.5 and
falls back after; each epoch closes a share of the gap to 1 that shrinks with the ratio between
--lr and that best rate. The state (accuracy, epochs done) lives in CHECKPOINT/state.json: read
at the start when present, written at the end. Deterministic, stdlib only, fast.

Prints ``Start-accuracy`` (the accuracy of the checkpoint it resumed from) once, then
``epoch=N Validation-accuracy=...`` per epoch, for tuner's StdOut collector.
"""

import argparse
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--checkpoint", required=True, help="checkpoint directory (resume and save)")
args = parser.parse_args()

state_file = os.path.join(args.checkpoint, "state.json")
state = {"accuracy": 0.0, "epochs": 0}
if os.path.exists(state_file):
    with open(state_file) as f:
        state = json.load(f)
print(f"Start-accuracy={state['accuracy']!r}", flush=True)

accuracy = float(state["accuracy"])
for _ in range(args.epochs):
    best_lr = 0.002 + 0.016 * min(accuracy, 1.0 - accuracy)
    ratio = max(args.lr, best_lr) / min(args.lr, best_lr)
    accuracy += (1.0 - accuracy) * 0.08 / ratio
    state["epochs"] += 1
    print(f"epoch={state['epochs']} Validation-accuracy={accuracy!r}", flush=True)

state["accuracy"] = accuracy
os.makedirs(args.checkpoint, exist_ok=True)
with open(state_file, "w") as f:
    json.dump(state, f)
