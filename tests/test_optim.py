"""tinytensor.optim: several steps of each optimizer against the update written out in NumPy (float64),
state_dict round trips, the schedules' lr sequences against their formulas, and clip_grad_norm_.
"""
import math

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import nn, optim
from tinytensor.optim import lr_scheduler as sched

rng = np.random.default_rng(0)
C, B = rng.uniform(0.5, 2.0, size=(3, 4)), rng.normal(size=(3, 4))
P0 = rng.normal(size=(3, 4))


def grad_of(p):
    """The gradient of the test loss sum(C * p^2 / 2 + B * p) + 0.1 * sum(p^3): changes every step."""
    return C * p + B + 0.3 * p * p


def run_tt(make_opt, steps=6):
    p = tt.tensor(P0.copy(), requires_grad=True)
    opt = make_opt([p])
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (tt.tensor(C) * p * p / 2 + tt.tensor(B) * p).sum() + 0.1 * (p * p * p).sum()
        loss.backward()
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


def sgd_ref(lr, momentum=0.0, dampening=0.0, wd=0.0, nesterov=False, maximize=False, steps=6):
    p, buf, out = P0.copy(), None, []
    for _ in range(steps):
        g = grad_of(p) * (-1 if maximize else 1)
        g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p.copy())
    return out


def adam_ref(lr, betas=(0.9, 0.999), eps=1e-8, wd=0.0, amsgrad=False, decoupled=False, steps=6):
    p, m, v, vmax, out = P0.copy(), np.zeros_like(P0), np.zeros_like(P0), np.zeros_like(P0), []
    for t in range(1, steps + 1):
        g = grad_of(p)
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        vmax = np.maximum(vmax, v)
        vhat = (vmax if amsgrad else v) / (1 - betas[1] ** t)
        p = p - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(vhat) + eps)
        out.append(p.copy())
    return out


def assert_steps(ours, ref):
    assert len(ours) == len(ref)
    for step, (a, b) in enumerate(zip(ours, ref)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"step {step + 1}")
    assert not np.allclose(ref[-1], P0)  # the parameters did move


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(momentum=0.9, dampening=0.3),
                                dict(momentum=0.8, nesterov=True), dict(momentum=0.5, wd=0.1),
                                dict(wd=0.2, maximize=True)])
def test_sgd_matches_numpy(kw):
    ours = run_tt(lambda ps: optim.SGD(ps, lr=0.05, momentum=kw.get("momentum", 0), dampening=kw.get("dampening", 0),
                                       weight_decay=kw.get("wd", 0), nesterov=kw.get("nesterov", False),
                                       maximize=kw.get("maximize", False)))
    assert_steps(ours, sgd_ref(0.05, **kw))


@pytest.mark.parametrize("cls,wd,amsgrad", [(optim.Adam, 0.0, False), (optim.Adam, 0.1, True),
                                            (optim.AdamW, 0.1, False), (optim.AdamW, 0.3, True)])
def test_adam_and_adamw_match_numpy(cls, wd, amsgrad):
    ours = run_tt(lambda ps: cls(ps, lr=0.1, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd, amsgrad=amsgrad))
    assert_steps(ours, adam_ref(0.1, (0.8, 0.95), 1e-6, wd, amsgrad, decoupled=cls is optim.AdamW))


@pytest.mark.parametrize("name,kw", [("AdamW", dict(lr=0.1, weight_decay=0.2, amsgrad=True)),
                                     ("Adam", dict(lr=0.05, weight_decay=0.1, maximize=True)),
                                     ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1))])
def test_optimizers_match_torch_when_installed(name, kw):
    torch = pytest.importorskip("torch")
    p = torch.tensor(P0.copy(), requires_grad=True)
    opt = getattr(torch.optim, name)([p], **kw)
    theirs = []
    for _ in range(6):
        opt.zero_grad()
        p.grad = torch.tensor(grad_of(p.detach().numpy()))
        opt.step()
        theirs.append(p.detach().numpy().copy())
    assert_steps(run_tt(lambda ps: getattr(optim, name)(ps, **kw)), theirs)


def test_adamw_default_weight_decay_and_decoupling():
    assert optim.AdamW([tt.zeros(1, requires_grad=True)]).defaults["weight_decay"] == 0.01
    # with a zero gradient, AdamW only decays (p *= 1 - lr * wd) while Adam's L2 term moves p by ~lr
    for cls, expected in ((optim.AdamW, 1.0 * (1 - 0.1 * 0.5)), (optim.Adam, 1.0 - 0.1)):
        p = tt.ones(1, requires_grad=True)
        opt = cls([p], lr=0.1, weight_decay=0.5)
        p.grad = tt.zeros(1)
        opt.step()
        assert p.item() == pytest.approx(expected, rel=1e-6)


def test_param_groups_and_zero_grad():
    a, b = tt.ones(2, requires_grad=True), tt.ones(3, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    (a.sum() + b.sum()).backward()
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), 0.9)
    np.testing.assert_allclose(b.detach().numpy(), 0.5)
    opt.zero_grad(set_to_none=False)
    assert np.all(a.grad.numpy() == 0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([a], betas=(0.9, 1.0))


@pytest.mark.parametrize("make", [lambda ps: optim.AdamW(ps, lr=0.1, amsgrad=True),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)])
def test_optimizer_state_dict_round_trip(make):
    straight = run_tt(make, steps=5)
    p = tt.tensor(P0.copy(), requires_grad=True)
    opt = make([p])
    for _ in range(3):
        opt.zero_grad()
        (tt.tensor(C) * p * p / 2 + tt.tensor(B) * p).sum().add(0.1 * (p * p * p).sum()).backward()
        opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and set(sd["state"]) == {0}
    q = tt.tensor(p.detach().numpy().copy(), requires_grad=True)
    opt2 = make([q])
    # the JSON round trip a checkpoint makes: int keys become strings, tuples become lists
    opt2.load_state_dict({"state": {"0": sd["state"][0]},
                          "param_groups": [{k: list(v) if isinstance(v, tuple) else v
                                            for k, v in sd["param_groups"][0].items()}]})
    assert opt2.param_groups[0] is not sd["param_groups"][0]
    if "betas" in opt2.param_groups[0]:
        assert opt2.param_groups[0]["betas"] == (0.9, 0.999) and opt2.state[q]["step"] == 3
    for _ in range(2):
        opt2.zero_grad()
        (tt.tensor(C) * q * q / 2 + tt.tensor(B) * q).sum().add(0.1 * (q * q * q).sum()).backward()
        opt2.step()
    np.testing.assert_array_equal(q.detach().numpy(), straight[-1])
    with pytest.raises(ValueError, match="parameter groups"):
        opt2.load_state_dict({"state": {}, "param_groups": []})


# ---- schedules ---------------------------------------------------------------------------------------

def lrs(scheduler, n):
    out = [scheduler.optimizer.param_groups[0]["lr"]]
    for _ in range(n):
        scheduler.optimizer.step()
        scheduler.step()
        out.append(scheduler.get_last_lr()[0])
    return out


def _opt(lr=0.5):
    return optim.SGD([tt.zeros(1, requires_grad=True)], lr=lr)


def test_schedules_follow_their_formulas():
    np.testing.assert_allclose(lrs(sched.StepLR(_opt(), step_size=3, gamma=0.5), 9),
                               [0.5 * 0.5 ** (e // 3) for e in range(10)], rtol=1e-15)
    np.testing.assert_allclose(lrs(sched.LambdaLR(_opt(), lambda e: 1 / (e + 1)), 5),
                               [0.5 / (e + 1) for e in range(6)], rtol=1e-15)
    np.testing.assert_allclose(lrs(sched.CosineAnnealingLR(_opt(), T_max=8, eta_min=0.1), 8),
                               [0.1 + 0.4 * (1 + math.cos(math.pi * e / 8)) / 2 for e in range(9)], rtol=1e-15)
    got = lrs(sched.WarmupCosineLR(_opt(), warmup_steps=4, total_steps=12, min_lr_ratio=0.1), 14)
    expected = [0.5 * (e + 1) / 4 for e in range(4)]
    expected += [0.5 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (e - 4) / 8))) for e in range(4, 12)]
    expected += [0.05] * 3
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert got[3] == 0.5 and got[4] == 0.5 and got[12] == pytest.approx(0.05)


def test_cosine_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    p = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([p], lr=0.3)
    ts = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=7, eta_min=0.01)
    theirs = [topt.param_groups[0]["lr"]]
    for _ in range(10):
        topt.step()
        ts.step()
        theirs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs(sched.CosineAnnealingLR(_opt(0.3), T_max=7, eta_min=0.01), 10), theirs,
                               rtol=1e-12)


def test_scheduler_state_dict_resumes():
    s1 = sched.WarmupCosineLR(_opt(), 3, 10)
    lrs(s1, 4)
    s2 = sched.WarmupCosineLR(_opt(), 3, 10)
    s2.load_state_dict(s1.state_dict())
    assert s2.last_epoch == 4 and s2.get_last_lr() == s1.get_last_lr()
    assert lrs(s2, 3)[1:] == lrs(s1, 3)[1:]
    assert "optimizer" not in s1.state_dict() and "lr_lambdas" not in sched.LambdaLR(_opt(), abs).state_dict()


# ---- clip_grad_norm_ ---------------------------------------------------------------------------------

def _with_grads(*grads):
    ps = [tt.zeros(np.shape(g), dtype=tt.float64, requires_grad=True) for g in grads]
    for p, g in zip(ps, grads):
        p.grad = tt.tensor(np.asarray(g, dtype=np.float64))
    return ps


def test_clip_grad_norm():
    g1, g2 = rng.normal(size=(3, 4)), rng.normal(size=5)
    total = math.sqrt((g1 ** 2).sum() + (g2 ** 2).sum())
    ps = _with_grads(g1, g2)
    norm = nn.utils.clip_grad_norm_(ps, max_norm=1.0)
    assert norm.item() == pytest.approx(total, rel=1e-12)
    coef = 1.0 / (total + 1e-6)
    np.testing.assert_allclose(ps[0].grad.numpy(), g1 * coef, rtol=1e-12)
    np.testing.assert_allclose(ps[1].grad.numpy(), g2 * coef, rtol=1e-12)
    ps = _with_grads(g1, g2)
    assert nn.utils.clip_grad_norm_(ps, max_norm=100.0).item() == pytest.approx(total)
    np.testing.assert_array_equal(ps[0].grad.numpy(), g1)  # under the limit: unchanged
    ps = _with_grads(g1, g2)
    inf_norm = nn.utils.clip_grad_norm_(ps, 0.5, norm_type=math.inf).item()
    assert inf_norm == pytest.approx(max(np.abs(g1).max(), np.abs(g2).max()))
    ps = _with_grads(g1, g2)
    assert nn.utils.clip_grad_norm_(ps, 1e9, norm_type=1).item() == pytest.approx(np.abs(g1).sum() + np.abs(g2).sum())


def test_clip_grad_norm_non_finite():
    bad = np.array([1.0, np.inf])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(_with_grads(bad), 1.0, error_if_nonfinite=True)
    ps = _with_grads([3.0, 4.0], bad)
    before = [p.detach().numpy().copy() for p in ps]
    opt = optim.AdamW(ps, lr=0.1)
    norm = nn.utils.clip_grad_norm_(ps, 1.0, skip_nonfinite=True)
    assert math.isinf(norm.item()) and all(p.grad is None for p in ps)
    opt.step()  # nothing to do: the step is skipped, no state is created
    assert all(np.array_equal(p.detach().numpy(), b) for p, b in zip(ps, before)) and not opt.state
    ps = _with_grads([3.0, 4.0], [np.nan])
    assert math.isnan(nn.utils.clip_grad_norm_(ps, 1.0).item())
    assert np.isnan(ps[0].grad.numpy()).all()  # PyTorch's behaviour without either option
