"""Chapter 2's demon: δ^l_j = ∂C/∂z^l_j, seen by nudging one neuron's weighted input.

    python examples/the_demon.py [--sizes 64 30 20 10] [--dz 0.001] [--backend auto] [--seed 1]

Nielsen defines the error δ^l_j of neuron j in layer l through a demon who sits at that neuron and
adds a little change Δz to its weighted input, so that it outputs σ(z + Δz) instead of σ(z). The
change spreads through the later layers and the cost changes by about (∂C/∂z^l_j) Δz: that partial
derivative is δ^l_j, and backpropagation (BP1, BP2) computes it for every neuron at once. Here the
demon visits a few neurons in every layer for one digit image; each line compares the change in
the cost the demon causes with δ Δz from backprop.
"""

from __future__ import annotations

import bpgpu
from bpgpu.cli import shared
from bpgpu.datasets import load_digits


def main(argv: list[str] | None = None) -> float:
    parser = shared.Parser(description=shared.summary(__doc__), debug=True)
    parser.add_argument(
        "--sizes",
        type=shared.positive_int,
        nargs="+",
        default=[64, 30, 20, 10],
        help="every layer, input first",
    )
    parser.add_argument("--dz", type=shared.positive_float, default=1e-3, help="the demon's nudge Δz")
    parser.add_argument("--neurons", type=shared.positive_int, default=3, help="neurons visited per layer")
    parser.add_argument(
        "--backend",
        type=shared.backend_name,
        help=f"{shared.BACKEND_HELP} (default: $BPGPU_BACKEND, else auto)",
    )
    parser.add_argument("--seed", type=shared.seed, default=1, help="seeds the network")
    args = parser.parse_args(argv)
    digits = load_digits()
    if args.sizes[0] != 64 or args.sizes[-1] != 10:
        parser.error(f"--sizes must start with 64 (the digits' pixels) and end with 10; got {args.sizes}")
    net = bpgpu.Network(args.sizes, backend=args.backend, dtype="float64", seed=args.seed)
    x, label = digits.train.X[:1], digits.train.y[:1]
    print(f"{net!r}\none training image of a {label[0]}; the cost C = ½‖a^L − y‖² = {net.cost(x, label):.6f}")
    nabla_b, _ = net.backprop(x, label)  # for one example, ∂C/∂b^l_j = δ^l_j (BP3)
    worst = 0.0
    for l, b in enumerate(nabla_b):
        name = "the output layer" if l == len(nabla_b) - 1 else f"hidden layer {l + 1}"
        print(f"\n{name} (layer {l + 2} in the book's numbering):")
        deltas = net.backend.to_numpy(b)
        for j in range(min(args.neurons, args.sizes[l + 1])):
            change = net.cost(x, label, demon=(l, j, args.dz)) - net.cost(x, label)
            predicted = deltas[j] * args.dz
            gap = abs(change - predicted) / max(abs(predicted), 1e-300)
            worst = max(worst, gap)
            print(
                f"  the demon adds Δz = {args.dz:g} to neuron {j}: the cost changes by {change:+.6e}; "
                f"δ Δz = {predicted:+.6e} (δ = {deltas[j]:+.4e}, off by {gap:.3%})"
            )
    print(
        f"\nΔC ≈ δ Δz holds to within {worst:.2%}: the rest is the Δz² term of the change, which a smaller "
        "--dz shrinks. So δ^l_j = ∂C/∂z^l_j, and backprop computes it without any demon."
    )
    return worst


if __name__ == "__main__":
    shared.run(main)
