"""Stands in for Katib's MXNet MNIST trainer: its accuracy is a known function of the params.

Validation-accuracy = 0.9 - 100 * (lr - 0.02)**2 - 0.01 * |num_layers - 3| + bonus(optimizer),
printed per epoch the way the MXNet example logs it (``Validation-accuracy=0.93``).
"""

import argparse

BONUS = {"sgd": 0.0, "adam": 0.02, "ftrl": -0.01}

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int)
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--num-layers", type=int, required=True)
parser.add_argument("--optimizer", required=True)
parser.add_argument("--num-epochs", type=int, default=3)
args = parser.parse_args()


def accuracy(lr: float, layers: int, optimizer: str) -> float:
    return 0.9 - 100 * (lr - 0.02) ** 2 - 0.01 * abs(layers - 3) + BONUS[optimizer]


final = accuracy(args.lr, args.num_layers, args.optimizer)
for epoch in range(args.num_epochs):
    # Earlier epochs are worse; the max over epochs is the final value.
    value = final - 0.05 * (args.num_epochs - 1 - epoch)
    print(f"Epoch[{epoch}] Train-accuracy={value + 0.01!r}")
    print(f"Epoch[{epoch}] Validation-accuracy={value!r}")
