"""Chapter 5's vanishing gradient: each layer's speed of learning ‖∂C/∂b^l‖, at initialisation and
over training, for two, three and four hidden layers of 30 neurons.

    python examples/vanishing_gradient.py [--epochs 30] [--rows 1000] [--eta 0.1] [--backend auto]
                                          [--seed 1] [--data auto|digits|fashion-mnist]

As in the book, the speeds are measured over the first 1000 training images, and the network
trains on those same images with mini-batches of 10. Three settings: sigmoid neurons with chapter
1's N(0, 1) weights and the quadratic cost; sigmoid neurons with chapter 3's N(0, 1/n_in) weights
and the cross-entropy cost (the book's chapter-5 networks); and ReLU hidden neurons with chapter
3's weights. The data is Fashion-MNIST when it is installed (apt-get install
dataset-fashion-mnist), else the embedded digits.
"""

from __future__ import annotations

import bpgpu
from bpgpu.cli import shared
from bpgpu.datasets import fashion_mnist_directory, load_digits, load_fashion_mnist

SETTINGS = {
    "sigmoid, chapter 1 (N(0,1), quadratic)": {"init": "normal", "cost": "quadratic"},
    "sigmoid, chapter 3 (N(0,1/n_in), cross-entropy)": {"init": "scaled", "cost": "cross_entropy"},
    "ReLU, chapter 3 (N(0,1/n_in), cross-entropy)": {
        "init": "scaled",
        "cost": "cross_entropy",
        "activation": "relu",
        "output_activation": "sigmoid",
    },
}


def main(argv: list[str] | None = None) -> dict:
    parser = shared.Parser(description=shared.summary(__doc__), debug=True)
    parser.add_argument("--epochs", type=shared.positive_int, default=30, help="passes over the rows")
    parser.add_argument("--rows", type=shared.positive_int, default=1000, help="training rows used")
    parser.add_argument("--eta", type=shared.positive_float, default=0.1, help="learning rate")
    parser.add_argument(
        "--data",
        choices=("auto", "digits", "fashion-mnist"),
        default="auto",
        help="auto: Fashion-MNIST if installed",
    )
    parser.add_argument(
        "--backend",
        type=shared.backend_name,
        help=f"{shared.BACKEND_HELP} (default: $BPGPU_BACKEND, else auto)",
    )
    parser.add_argument("--seed", type=shared.seed, default=1, help="seeds the networks")
    args = parser.parse_args(argv)
    fashion = args.data == "fashion-mnist" or (args.data == "auto" and fashion_mnist_directory() is not None)
    data = load_fashion_mnist() if fashion else load_digits()
    X, y = data.train.X[: args.rows], data.train.y[: args.rows]
    features = X.shape[1]
    print(f"data: {'Fashion-MNIST' if fashion else 'the embedded digits'}, the first {len(y)} training rows")
    print("speed of learning ‖∂C/∂b^l‖ of each hidden layer (then the output layer), at initialisation")
    epochs = f"{args.epochs} epoch{'s' * (args.epochs != 1)}"
    print(f"and after {epochs} of mini-batches of 10, eta {args.eta:g}, seed {args.seed}\n")
    results = {}
    for name, options in SETTINGS.items():
        print(name)
        for hidden in (2, 3, 4):
            sizes = [features, *[30] * hidden, 10]
            net = bpgpu.Network(sizes, backend=args.backend, seed=args.seed, **options)
            start = net.layer_speeds(X, y)
            net.SGD((X, y), args.epochs, 10, args.eta)
            end = net.layer_speeds(X, y)  # over the same rows as at the start
            results[name, hidden] = (start, end)
            shown = [" ".join(f"{s:7.4f}" for s in speeds) for speeds in (start, end)]
            print(f"  {hidden} hidden layers: at the start {shown[0]}\n  {'':16} at the end   {shown[1]}")
        print()
    print("Sigmoid layers nearer the input learn more slowly: their δ is σ'(z) ≤ 1/4 times the weights")
    print("of every later layer. ReLU passes δ back unchanged wherever z > 0, so its speeds stay closer.")
    return results


if __name__ == "__main__":
    shared.run(main)
