"""Chapter 02, micrograd: train a small neural net with a scalar autograd engine, then with tensors.

What it teaches: backpropagation is the chain rule applied node by node. We train a 2-16-16-1
ReLU MLP to separate two interleaved half moons, first with `tinytensor.scalar.Value` (every
weight, product and sum is its own Python object), then with tinytensor Tensors (one matmul
per layer). Both start from the same weights, see the same data and take the same steps, so
they end with the same accuracy and nearly the same loss: the Tensor engine is the same
algorithm, batched.

The loss is micrograd's: a max-margin (SVM) hinge, mean(relu(1 - y * score)) with labels y in
{-1, +1}, plus a small L2 penalty alpha * sum(w^2). Plain full-batch gradient descent with a
learning rate that decays linearly from --lr to --lr / 10.

Run:
    python examples/02_micrograd.py                # defaults: 100 points, 100 steps
    python examples/02_micrograd.py --steps 200 --n-points 200 --seed 1

Prints the training accuracy and final loss of each engine and saves
`<out>/micrograd.png` (loss curves and both decision boundaries).
Takes about 30 seconds on a 2-core CPU, nearly all of it in the Value engine, which builds
and walks a graph of about 66,000 nodes per step; the Tensor half takes about a second.
"""
import argparse
import contextlib
import gc
import os
import time
from typing import Callable, List, NamedTuple, Tuple

import numpy as np
from tqdm import tqdm

import tinytensor as tt
from tinytensor.scalar import Value

Weights = List[Tuple[np.ndarray, np.ndarray]]   # [(W (nin, nout), b (nout,)), ...] per layer


class TrainResult(NamedTuple):
    accuracy: float                              # fraction of training points on the right side
    losses: List[float]                          # loss before each step
    predict: Callable[[np.ndarray], np.ndarray]  # (N, 2) points -> (N,) scores; sign is the class


def make_moons(n: int, seed: int, noise: float = 0.1) -> Tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles: X (n, 2) float64, y (n,) in {-1.0, +1.0}."""
    rng = np.random.default_rng(seed)
    n_top = n // 2
    t_top = rng.uniform(0.0, np.pi, n_top)
    t_bot = rng.uniform(0.0, np.pi, n - n_top)
    top = np.stack([np.cos(t_top), np.sin(t_top)], axis=1)               # arc over (0, 0)
    bot = np.stack([1.0 - np.cos(t_bot), 0.5 - np.sin(t_bot)], axis=1)   # arc under (1, 0.5)
    X = np.concatenate([top, bot]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([-np.ones(n_top), np.ones(n - n_top)])
    return X, y


def init_weights(sizes: List[int], seed: int) -> Weights:
    """Uniform(-1, 1) weights and zero biases, one (W, b) per layer, shared by both engines."""
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-1.0, 1.0, (nin, nout)), np.zeros(nout)) for nin, nout in zip(sizes[:-1], sizes[1:])]


@contextlib.contextmanager
def cycle_collector_paused():
    """Pause Python's cycle collector while Value graphs are built.

    The collector rescans all live objects whenever enough new ones have piled up. One training
    step builds about a million live objects (nodes, their closures and child tuples), so it
    would rescan them several times per step, making training about 5x slower. Value graphs
    hold no reference cycles (see scalar.py), so reference counting frees them anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def lr_at(step: int, steps: int, lr: float) -> float:
    """Linear decay from lr to lr / 10 over the run."""
    return lr * (1.0 - 0.9 * step / steps)


# ----------------------------------------------------------------------------------------------
# The Value engine: a neuron is a list of weights, a layer a list of neurons, an MLP a list of layers.

class Neuron:
    def __init__(self, w: np.ndarray, b: float, nonlin: bool):
        self.w = [Value(wi) for wi in w]
        self.b = Value(b)
        self.nonlin = nonlin

    def __call__(self, x: List[Value]) -> Value:
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> List[Value]:
        return self.w + [self.b]


class Layer:
    def __init__(self, W: np.ndarray, b: np.ndarray, nonlin: bool):
        self.neurons = [Neuron(W[:, j], b[j], nonlin) for j in range(W.shape[1])]

    def __call__(self, x: List[Value]) -> List[Value]:
        return [n(x) for n in self.neurons]

    def parameters(self) -> List[Value]:
        return [p for n in self.neurons for p in n.parameters()]


class MLP:
    def __init__(self, weights: Weights):
        last = len(weights) - 1
        self.layers = [Layer(W, b, nonlin=i < last) for i, (W, b) in enumerate(weights)]

    def __call__(self, x: List[Value]) -> Value:
        for layer in self.layers:
            x = layer(x)
        return x[0]                                  # the single output score

    def parameters(self) -> List[Value]:
        return [p for layer in self.layers for p in layer.parameters()]


def train_value_mlp(X: np.ndarray, y: np.ndarray, weights: Weights, steps: int, lr: float,
                    alpha: float = 1e-4, progress: bool = True) -> TrainResult:
    """Full-batch gradient descent on the hinge + L2 loss, one Python object per number."""
    model = MLP(weights)
    params = model.parameters()
    inputs = [[Value(v) for v in row] for row in X.tolist()]
    losses = []
    bar = tqdm(range(steps), desc="Value ", disable=not progress)
    with cycle_collector_paused():
        for step in bar:
            scores = [model(x) for x in inputs]
            hinge = sum((1 + -yi * s).relu() for yi, s in zip(y.tolist(), scores)) * (1.0 / len(inputs))
            loss = hinge + alpha * sum(p * p for p in params)
            for p in params:                         # grads accumulate with +=, so zero them first
                p.grad = 0.0
            loss.backward()
            for p in params:
                p.data -= lr_at(step, steps, lr) * p.grad
            losses.append(loss.data)
            bar.set_postfix(loss=f"{loss.data:.4f}")

    def predict(points: np.ndarray) -> np.ndarray:
        with cycle_collector_paused():
            return np.array([model([Value(v) for v in row]).data for row in points.tolist()])
    return TrainResult(float(np.mean(np.sign(predict(X)) == y)), losses, predict)


# ----------------------------------------------------------------------------------------------
# The Tensor engine: the same network as three matmuls, the same loss as a handful of tensor ops.

def tensor_forward(params: list, X: "tt.Tensor") -> "tt.Tensor":
    """(N, 2) -> (N,) scores; ReLU after every layer but the last."""
    h = X
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]            # (N, nin) @ (nin, nout) + (nout,) -> (N, nout)
        if i + 2 < len(params):
            h = h.relu()
    return h.sum(dim=1)                              # (N, 1) -> (N,)


def train_tensor_mlp(X: np.ndarray, y: np.ndarray, weights: Weights, steps: int, lr: float,
                     alpha: float = 1e-4, progress: bool = True) -> TrainResult:
    """The same training loop as train_value_mlp, on float64 tensors."""
    params = [tt.tensor(a, dtype=tt.float64, requires_grad=True) for W, b in weights for a in (W, b)]
    Xt, yt = tt.tensor(X, dtype=tt.float64), tt.tensor(y, dtype=tt.float64)
    losses = []
    bar = tqdm(range(steps), desc="Tensor", disable=not progress)
    for step in bar:
        scores = tensor_forward(params, Xt)
        loss = (1 - yt * scores).relu().mean()
        for p in params:
            loss = loss + alpha * (p * p).sum()
        loss.backward()
        with tt.no_grad():
            for p in params:
                p -= lr_at(step, steps, lr) * p.grad
                p.grad = None                        # the next backward starts from zero
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}")

    def predict(points: np.ndarray) -> np.ndarray:
        with tt.no_grad():
            return tensor_forward(params, tt.tensor(points, dtype=tt.float64)).numpy()
    return TrainResult(float(np.mean(np.sign(predict(X)) == y)), losses, predict)


# ----------------------------------------------------------------------------------------------

def save_plot(path: str, X: np.ndarray, y: np.ndarray, results: dict, grid_n: int = 40) -> None:
    """Loss curves, then each engine's decision boundary over the training points."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid_n), np.linspace(lo[1], hi[1], grid_n))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)            # (grid_n * grid_n, 2)
    fig, axes = plt.subplots(1, 1 + len(results), figsize=(5 * (1 + len(results)), 4.5))
    for i, (name, res) in enumerate(results.items()):                # dashed on solid: they overlap
        axes[0].plot(res.losses, label=name, lw=3.0 if i == 0 else 1.5, ls="-" if i == 0 else "--")
    axes[0].set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    axes[0].legend()
    for ax, (name, res) in zip(axes[1:], results.items()):
        scores = res.predict(grid).reshape(gx.shape)
        ax.contourf(gx, gy, scores > 0, levels=1, cmap="coolwarm", alpha=0.3)
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", s=15, edgecolors="k", linewidths=0.5)
        ax.set(title=f"{name} engine: {100 * res.accuracy:.0f}% train accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--steps", type=int, default=100,
                    help="how many gradient descent steps each engine (Value, then Tensor) trains the network; "
                    "each step uses all training points")
    ap.add_argument("--lr", type=float, default=1.0,
                    help="learning rate at the first step: how far each step moves the weights; it falls linearly "
                    "to lr/10 by the last step")
    ap.add_argument("--alpha", type=float, default=1e-4,
                    help="weight of the L2 penalty alpha * sum(w^2) added to the loss, which keeps the weights small")
    ap.add_argument("--n-points", type=int, default=100,
                    help="how many points the two-moons training set has (half of them in each moon)")
    ap.add_argument("--seed", type=int, default=0,
                    help="random seed for the data and the initial weights; the same seed gives the same run")
    ap.add_argument("--out", default="out/02_micrograd/",
                    help="folder for micrograd.png (a relative path starts from the current directory; "
                    "created if missing)")
    ap.add_argument("--grid", type=int, default=40,
                    help="points per side of the grid on which the plot colours the decision boundary "
                    "(more is finer but slower, mostly in the Value engine)")
    args = ap.parse_args()

    X, y = make_moons(args.n_points, args.seed)
    weights = init_weights([2, 16, 16, 1], args.seed)
    results = {}
    for name, train in [("Value", train_value_mlp), ("Tensor", train_tensor_mlp)]:
        t0 = time.perf_counter()
        results[name] = res = train(X, y, weights, args.steps, args.lr, args.alpha)
        print(f"{name:6s} engine: train accuracy {100 * res.accuracy:5.1f}%, "
              f"final loss {res.losses[-1]:.6f}, {time.perf_counter() - t0:.1f} s")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "micrograd.png")
    save_plot(path, X, y, results, args.grid)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
