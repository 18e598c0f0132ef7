"""Train the book's chapter-1 network on MNIST and print the test accuracy after every epoch.

    python examples/mnist_chapter1.py PATH [--epochs 30] [--batch-size 10] [--eta 3.0] [--hidden 30]
                                           [--backend auto] [--seed 1]

PATH is Nielsen's mnist.pkl.gz (github.com/mnielsen/neural-networks-and-deep-learning, data/) or a
directory holding the four MNIST IDX files, plain or gzipped; nothing is downloaded. The settings are
the book's chapter 1: a [784, 30, 10] network of sigmoid neurons, quadratic cost, mini-batches of 10,
eta = 3.0, 30 epochs on the 50 000 training images, tested on the 10 000 test images. The book
reports about 95% test accuracy.
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
    parser.add_argument("--eta", type=shared.positive_float, default=3.0, help="learning rate")
    parser.add_argument("--hidden", type=shared.positive_int, default=30, help="hidden neurons")
    parser.add_argument(
        "--backend",
        type=shared.backend_name,
        help=f"{shared.BACKEND_HELP} (default: $BPGPU_BACKEND, else auto)",
    )
    parser.add_argument("--seed", type=shared.seed, default=1, help="seeds parameters and shuffles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)  # stderr: errors only

    data = load_mnist(args.path)  # a missing or damaged file: one line on stderr, from shared.run
    net = bpgpu.Network([data.train.X.shape[1], args.hidden, 10], backend=args.backend, seed=args.seed)
    print(f"{net!r}\nbackend {net.backend.name} on {net.backend.device}")
    print(f"training on {len(data.train.y)} images, testing on {len(data.test.y)}")
    history = net.SGD(
        (data.train.X, data.train.y),
        epochs=args.epochs,
        mini_batch_size=args.batch_size,
        eta=args.eta,
        test_data=(data.test.X, data.test.y),
        verbose=True,
    )
    accuracy = history[-1].accuracy
    seconds = sum(r.seconds for r in history)
    print(f"test accuracy after {args.epochs} epochs: {accuracy:.1%} ({seconds:.2f} s of training)")
    return accuracy


if __name__ == "__main__":
    sys.exit(shared.run(main))
