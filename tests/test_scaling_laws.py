"""Chapter 07 (scaling laws): the fit, the compute-optimal closed form, the parameter count, and the --quick run.

References: synthetic losses drawn from the law with known (E, A, alpha, B, beta); the KKT conditions of
non-negative least squares; a brute-force search along the iso-compute curve; the parameter count of the
GPT itself. The --quick run checks real values (finite losses that fall with more data and with bigger
models, on average), the files it writes, and that a rerun reuses the finished runs. No timing asserts.
"""
import json
import math

import numpy as np
import pytest
from helpers import load_example

TRUE = {"E": 1.9, "A": 250.0, "alpha": 0.42, "B": 700.0, "beta": 0.5}


@pytest.fixture(scope="module")
def ch07():
    return load_example("07_scaling_laws")


def synthetic_grid(noise: float, seed: int = 0):
    """6 model sizes x 4 budgets of losses from the TRUE law, plus Gaussian noise of std `noise` nats."""
    N = np.repeat([1.5e5, 3.7e5, 6.3e5, 9.3e5, 1.6e6, 2.6e6], 4)
    D = np.tile([2e5, 5e5, 1.2e6, 3e6], 6)
    L = TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"] + TRUE["B"] * D ** -TRUE["beta"]
    return N, D, L + np.random.default_rng(seed).normal(0.0, noise, L.shape)


def law(p, N, D):
    return p["E"] + p["A"] * N ** -p["alpha"] + p["B"] * D ** -p["beta"]


def test_fit_recovers_exact_law(ch07):
    N, D, L = synthetic_grid(noise=0.0)
    fit = ch07.fit_scaling_law(N, D, L)
    assert fit["rmse"] < 1e-4 and not fit["at_edge"]
    assert fit["alpha"] == pytest.approx(TRUE["alpha"], abs=0.01)
    assert fit["beta"] == pytest.approx(TRUE["beta"], abs=0.01)
    assert fit["E"] == pytest.approx(TRUE["E"], abs=0.02)
    assert fit["A"] == pytest.approx(TRUE["A"], rel=0.1) and fit["B"] == pytest.approx(TRUE["B"], rel=0.1)


def test_fit_with_noise_predicts_outside_the_grid(ch07):
    N, D, L = synthetic_grid(noise=0.005, seed=1)
    fit = ch07.fit_scaling_law(N, D, L)
    assert fit["rmse"] < 0.01
    assert abs(fit["alpha"] - TRUE["alpha"]) < 0.08 and abs(fit["beta"] - TRUE["beta"]) < 0.08
    # the point of a fit: a model 2x bigger than the grid's largest, with 2x its data
    far_N, far_D = 5.2e6, 6e6
    assert float(ch07.scaling_law(fit, far_N, far_D)) == pytest.approx(law(TRUE, far_N, far_D), abs=0.03)


def test_nonneg_lstsq_satisfies_kkt(ch07):
    """Non-negative least squares is convex, so the KKT conditions identify its optimum: c >= 0, the gradient
    X^T (X c - y) is 0 where c > 0 and >= 0 where c = 0. Random problems, some with a negative unconstrained fit."""
    rng = np.random.default_rng(3)
    for trial in range(30):
        X = rng.normal(size=(12, 3))
        y = rng.normal(size=12) if trial % 2 else X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=12)
        c, sse = ch07.nonneg_lstsq(X, y)
        grad = X.T @ (X @ c - y)
        assert np.all(c >= 0)
        assert np.all(np.abs(grad[c > 0]) < 1e-8) and np.all(grad[c == 0] > -1e-8)
        assert sse == pytest.approx(float(np.sum((X @ c - y) ** 2)))


@pytest.mark.parametrize("C", [1e12, 3.7e14, 1e17])
def test_compute_optimal_matches_brute_force(ch07, C):
    Ns = np.geomspace(1e3, 1e10, 400_001)
    losses = law(TRUE, Ns, C / (6 * Ns))
    best = Ns[np.argmin(losses)]
    N_opt, D_opt = ch07.compute_optimal(TRUE, C)
    assert N_opt == pytest.approx(best, rel=2e-4)
    assert 6 * N_opt * D_opt == pytest.approx(C, rel=1e-12)
    assert float(ch07.scaling_law(TRUE, N_opt, D_opt)) <= losses.min() + 1e-12


def test_param_count_and_shape_search(ch07):
    from models.gpt2 import GPT, GPTConfig
    for n_layer, n_embd, vocab, block in [(1, 32, 4096, 128), (3, 160, 4096, 128), (2, 48, 300, 64)]:
        model = GPT(GPTConfig(block_size=block, vocab_size=vocab, n_layer=n_layer, n_head=n_embd // 16,
                              n_embd=n_embd, bias=False))
        assert ch07.gpt_params(n_layer, n_embd, vocab, block) == model.num_parameters()
    for target in (4e5, 2e6, 1.2e7):
        n_layer, n_embd = ch07.shape_for_params(target, 4096, 128, 32)
        assert n_embd % 32 == 0 and abs(ch07.gpt_params(n_layer, n_embd, 4096, 128) / target - 1) <= 0.15


def test_quick_run(ch07, tmp_path, monkeypatch):
    out = tmp_path / "out"
    results = ch07.main(["--quick", "--threads", "1", "--out", str(out)])
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"] == results["runs"] and len(saved["runs"]) == 9
    assert (out / "scaling_fit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = saved["runs"]
    assert all(math.isfinite(r["val_loss"]) and 0 < r["val_loss"] < 9 for r in runs)
    shapes = sorted({r["shape"] for r in runs}, key=lambda s: next(r["N"] for r in runs if r["shape"] == s))
    budgets = sorted({r["D"] for r in runs})
    loss = np.array([[next(r["val_loss"] for r in runs if r["shape"] == s and r["D"] == d) for d in budgets]
                     for s in shapes])  # (model sizes, budgets)
    assert loss[:, -1].mean() < loss[:, 0].mean() - 0.1      # more data: lower loss on average
    assert loss[-1].mean() < loss[0].mean() - 0.1            # a bigger model: lower loss on average
    fit, extra = saved["fit"], saved["extra"]
    assert all(math.isfinite(fit[k]) for k in ("E", "A", "alpha", "B", "beta"))
    assert math.isfinite(extra["val_loss"]) and math.isfinite(extra["predicted_val_loss"])
    assert extra["shape"] not in shapes
    # a rerun with the same settings trains nothing: every run comes from runs.json
    monkeypatch.setattr(ch07, "train_one", lambda *a, **k: pytest.fail("a finished run was trained again"))
    again = ch07.main(["--quick", "--threads", "1", "--out", str(out)])
    assert again["runs"] == runs and again["fit"] == fit
