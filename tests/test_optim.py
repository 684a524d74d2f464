"""The optimizers: Graves (2013) RMSProp by hand, and make_optimizer's names and errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from agents.optim import OPTIMIZERS, GravesRMSprop, make_optimizer


def _scalar_run(steps: int, **kwargs) -> list[float]:
    """θ starts at 1; the loss 2θ gives the constant gradient g = 2; returns θ after each step."""
    theta = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
    opt = GravesRMSprop([theta], **kwargs)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (2.0 * theta).backward()
        opt.step()
        out.append(theta.item())
    return out


def test_graves_rmsprop_two_steps_by_hand():
    # lr 0.1, decay 0.95, momentum 0.9, eps 1e-4, g = 2 at both steps, n = ḡ = Δ = 0 at first.
    # step 1: n = 0.05*4 = 0.2, ḡ = 0.05*2 = 0.1, n - ḡ² + ε = 0.19 + 1e-4 = 0.1901
    delta1 = -0.1 * 2 / math.sqrt(0.1901)  # = -0.458711...
    # step 2: n = 0.95*0.2 + 0.2 = 0.39, ḡ = 0.95*0.1 + 0.1 = 0.195, n - ḡ² + ε = 0.351975 + 1e-4
    delta2 = 0.9 * delta1 - 0.1 * 2 / math.sqrt(0.352075)  # = -0.749903...
    theta = _scalar_run(2, lr=0.1, decay=0.95, momentum=0.9, eps=1e-4)
    assert theta[0] == pytest.approx(1 + delta1, abs=1e-12)
    assert theta[1] == pytest.approx(1 + delta1 + delta2, abs=1e-12)
    assert theta[0] == pytest.approx(0.541289, abs=1e-6)
    assert theta[1] == pytest.approx(-0.208614, abs=1e-6)


def test_graves_rmsprop_defaults_are_the_papers():
    group = GravesRMSprop([torch.nn.Parameter(torch.zeros(1))]).param_groups[0]
    assert (group["lr"], group["decay"], group["momentum"], group["eps"]) == (1e-4, 0.95, 0.9, 1e-4)


def test_graves_rmsprop_matches_torch_centred_rmsprop_when_eps_is_negligible():
    # torch adds eps outside the square root; with a negligible eps both are the same algorithm
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
    b = torch.nn.Parameter(a.detach().clone())
    ours = GravesRMSprop([a], lr=1e-2, eps=1e-30)
    ref = torch.optim.RMSprop([b], lr=1e-2, alpha=0.95, momentum=0.9, centered=True, eps=1e-30)
    target = torch.randn(3, 4, dtype=torch.float64)
    for _ in range(5):
        for p, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_graves_rmsprop_skips_parameters_without_gradient_and_resumes_from_state_dict():
    used, unused = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = GravesRMSprop([used, unused], lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        (used * torch.tensor([1.0, -3.0])).sum().backward()
        opt.step()
    assert torch.equal(unused, torch.ones(2))
    assert used[0] < 1 < used[1]

    clone = torch.nn.Parameter(used.detach().clone())
    resumed = GravesRMSprop([clone, torch.nn.Parameter(torch.ones(2))], lr=0.1)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))  # as if saved to disk
    for p, o in ((used, opt), (clone, resumed)):
        o.zero_grad()
        (p * torch.tensor([1.0, -3.0])).sum().backward()
        o.step()
    torch.testing.assert_close(used, clone, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": 0.0}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr"),
        ({"decay": 1.0}, r"decay must be a number in \[0, 1\)"),
        ({"momentum": -0.1}, r"momentum must be a number in \[0, 1\)"),
        ({"eps": 0.0}, "eps must be a finite number > 0"),
    ],
)
def test_graves_rmsprop_rejects_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GravesRMSprop([torch.nn.Parameter(torch.zeros(1))], **kwargs)


def test_make_optimizer_names():
    p = [torch.nn.Parameter(torch.zeros(2))]
    assert OPTIMIZERS == ("adam", "rmsprop", "sgd")
    assert isinstance(make_optimizer("adam", p, 1e-3), torch.optim.Adam)
    assert isinstance(make_optimizer("rmsprop", p, 1e-4), GravesRMSprop)
    sgd = make_optimizer("sgd", p, 0.01, momentum=0.5)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["momentum"] == 0.5 and sgd.param_groups[0]["lr"] == 0.01


def test_make_optimizer_errors_name_the_argument():
    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="optimizer must be one of adam, rmsprop, sgd, got 'adagrad'"):
        make_optimizer("adagrad", p, 1e-3)
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got -1.0"):
        make_optimizer("adam", p, -1.0)
