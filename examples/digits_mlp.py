"""Train a small MLP on scikit-learn's bundled digits data, epoch by epoch.

Prints one line per epoch in Katib's default metrics format, for example::

    epoch=3 accuracy=0.9472 loss=0.1731

Runs offline (the digits data ships with scikit-learn) in a second or two.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lr", type=float, default=0.001, help="initial learning rate")
    parser.add_argument("--hidden", type=int, default=32, help="hidden units")
    parser.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", choices=["stdout", "push"], default="stdout")
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=args.seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    model = MLPClassifier(
        hidden_layer_sizes=(args.hidden,),
        learning_rate_init=args.lr,
        alpha=args.alpha,
        solver=args.optimizer,
        max_iter=1,
        warm_start=True,
        random_state=args.seed,
    )
    classes = np.unique(y)
    report = None
    if args.report == "push":
        import tuner

        report = tuner.report
    for epoch in range(args.epochs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(x_train, y_train, classes=classes)
        accuracy = float(model.score(x_test, y_test))
        loss = float(log_loss(y_test, model.predict_proba(x_test), labels=classes))
        if report is not None:
            if report(step=epoch, accuracy=accuracy, loss=loss):
                print(f"epoch={epoch} stopping early on the service's request", flush=True)
                return
        else:
            print(f"epoch={epoch} accuracy={accuracy:.4f} loss={loss:.4f}", flush=True)


if __name__ == "__main__":
    main()
