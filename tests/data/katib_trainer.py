"""Stands in for the trainers of Katib's examples (a PyTorch MNIST, an XGBoost): takes their
command-line options and reports ``loss`` and ``accuracy``, known functions of the parameters.

loss = 100 * (lr - 0.02)**2 + (momentum - 0.7)**2 + 0.05 / epochs, falling over the epochs to
that value; accuracy = 1 / (1 + loss). Metrics go to stdout as ``loss=0.1 accuracy=0.9``, or,
with ``--log-path``, to that file: as ``{metricName: loss, metricValue: 0.1}`` lines (Katib's
File collector example) or, with ``--logger=hypertune``, as JSON lines.
With ``--job_type`` (LightGBM's option, Katib's XGBoostJob example) it prints LightGBM's
``valid_1 auc : 0.9`` lines instead (accuracy as the auc); with ``--tfevent-dir`` it writes
``loss`` and ``accuracy`` as TensorBoard events there (Katib's TFJob example).
Options it does not know (an XGBoost's ``--alpha``...) are accepted and ignored.
"""

import argparse
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--lr", "--learning-rate", "--learning_rate", type=float, default=0.02)
parser.add_argument("--momentum", type=float, default=0.7)
parser.add_argument("--log-path")
parser.add_argument("--logger", default="standard")
parser.add_argument("--job_type")  # LightGBM's: print its "valid_1 auc : 0.9" lines
parser.add_argument("--tfevent-dir")  # write TensorBoard events (tensorboardX) there
args, _ = parser.parse_known_args()

final = 100 * (args.lr - 0.02) ** 2 + (args.momentum - 0.7) ** 2 + 0.05 / max(args.epochs, 1)
steps = max(args.epochs, 2)
trial = os.environ.get("TRIAL_NAME")
if trial is not None:  # Katib's metadata example passes the trial's name in the environment
    print(f"trial name {trial}")
writer = None
if args.tfevent_dir is not None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(args.tfevent_dir)
for step in range(steps):
    loss = final + 0.1 * (steps - 1 - step)
    accuracy = 1 / (1 + loss)
    if writer is not None:
        writer.add_scalar("accuracy", accuracy, step)
        writer.add_scalar("loss", loss, step)
        continue
    if args.job_type is not None:
        print(f"[{step}] valid_1 auc : {accuracy:.6f}", flush=True)
        print(f"[{step}] valid_1 binary_logloss : {loss:.6f}", flush=True)
        print(f"[{step}] training auc : {accuracy:.6f}", flush=True)
        continue
    if args.log_path is None:
        print(f"epoch {step}: loss={loss!r} accuracy={accuracy!r}", flush=True)
        continue
    os.makedirs(os.path.dirname(args.log_path), exist_ok=True)
    with open(args.log_path, "a") as f:
        if args.logger == "hypertune":
            f.write(json.dumps({"loss": loss, "accuracy": accuracy, "epoch": step}) + "\n")
        else:
            f.write(f"{{metricName: loss, metricValue: {loss:.6f}}}\n")
            f.write(f"{{metricName: accuracy, metricValue: {accuracy:.6f}}}\n")
if writer is not None:
    writer.close()
