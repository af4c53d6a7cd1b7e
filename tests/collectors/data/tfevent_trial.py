"""A trial that writes TensorBoard event files with a real writer (tensorboardX).

Katib's layout: ``<logdir>/train`` and ``<logdir>/test`` runs with the same tags, so that a
metric named ``train/loss`` must be told apart from ``test``'s ``loss``.
"""

import argparse
import os

from tensorboardX import SummaryWriter

parser = argparse.ArgumentParser()
parser.add_argument("--logdir", required=True)
parser.add_argument("--x", type=float, required=True)
args = parser.parse_args()

train = SummaryWriter(os.path.join(args.logdir, "train"))
test = SummaryWriter(os.path.join(args.logdir, "test"))
for step in range(3):
    accuracy = 0.9 - (args.x - 0.25) ** 2 + 0.01 * step
    train.add_scalar("accuracy", accuracy, step)
    train.add_scalar("loss", 1.0 - accuracy, step)
    test.add_scalar("loss", 5.0, step)  # another run's loss: not train/loss
train.close()
test.close()
