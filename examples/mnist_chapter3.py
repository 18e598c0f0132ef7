"""Train the book's chapter-3 network on MNIST: cross-entropy, scaled initialisation, L2 regularisation.

    python examples/mnist_chapter3.py PATH [--epochs 30] [--batch-size 10] [--eta 0.5] [--lmbda 5.0]
                                           [--hidden 100] [--backend auto] [--seed 1]

PATH is Nielsen's mnist.pkl.gz or a directory of the four MNIST IDX files. The settings are the
chapter's `network2.py` run: a [784, 100, 10] network of sigmoid neurons, the cross-entropy cost,
weights drawn N(0, 1/n_in), L2 regularisation with lmbda = 5.0 over the 50 000 training images,
mini-batches of 10, eta = 0.5, 30 epochs, accuracy on the validation images after every epoch. The
book reports about 98% accuracy; the test accuracy is printed at the end.
"""

from __future__ import annotations

import logging
import sys

import bpgpu
from bpgpu.cli import shared
from bpgpu.datasets import load_mnist


def main(argv: list[str] | None = None) -> float:
    parser = shared.Parser(description=shared.summary(__doc__), debug=True)
    parser.add_argument("path", help="mnist.pkl.gz, or a directory of the four IDX files")
    parser.add_argument("--epochs", type=shared.positive_int, default=30, help="passes over the data")
    parser.add_argument("--batch-size", type=shared.positive_int, default=10, help="mini-batch size")
    parser.add_argument("--eta", type=shared.positive_float, default=0.5, help="learning rate")
    parser.add_argument("--lmbda", type=shared.at_least_zero, default=5.0, help="L2 regularisation λ")
    parser.add_argument("--hidden", type=shared.positive_int, default=100, help="hidden neurons")
    parser.add_argument(
        "--backend",
        type=shared.backend_name,
        help=f"{shared.BACKEND_HELP} (default: $BPGPU_BACKEND, else auto)",
    )
    parser.add_argument("--seed", type=shared.seed, default=1, help="seeds parameters and shuffles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)  # stderr: errors only

    try:
        data = load_mnist(args.path)
    except (OSError, ValueError) as exc:
        sys.exit(f"{parser.prog}: error: cannot load MNIST: {' '.join(str(exc).split())}")
    sizes = [data.train.X.shape[1], args.hidden, 10]
    net = bpgpu.Network(sizes, cost="cross_entropy", init="scaled", backend=args.backend, seed=args.seed)
    print(f"{net!r}\nbackend {net.backend.name} on {net.backend.device}")
    print(f"training on {len(data.train.y)} images, validating on {len(data.validation.y)}")
    history = net.SGD(
        (data.train.X, data.train.y),
        epochs=args.epochs,
        mini_batch_size=args.batch_size,
        eta=args.eta,
        lmbda=args.lmbda,
        evaluation_data=(data.validation.X, data.validation.y),
        monitor=("evaluation_accuracy", "training_cost"),
        verbose=True,
    )
    accuracy = net.evaluate(data.test.X, data.test.y) / len(data.test.y)
    seconds = sum(r.seconds for r in history)
    print(f"validation accuracy after {args.epochs} epochs: {history[-1].evaluation_accuracy:.2%}")
    print(f"test accuracy: {accuracy:.2%} ({seconds:.1f} s of training)")
    return accuracy


if __name__ == "__main__":
    sys.exit(shared.run(main))
