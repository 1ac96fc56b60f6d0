"""FGSM and PGD: they raise the loss, PGD stays inside its ball in both norms; token models are attacked
through the embeddings."""
import pytest
import torch
import torch.nn.functional as F

from ssm.models import SequenceModel
from ssm.robustness import InputSite, fgsm, l2_radius, pgd, project


def _model(**kw):
    torch.manual_seed(0)
    args = dict(d_input=2, d_output=4, d_model=8, n_layers=2, layer="s4d", layer_kwargs={"d_state": 8})
    args.update(kw)
    return SequenceModel(**args).double().eval()


def _batch(tokens=False):
    torch.manual_seed(1)
    x = torch.randint(1, 11, (16, 20)) if tokens else torch.randn(16, 20, 2, dtype=torch.float64)
    return x, torch.randint(0, 4, (16,))


def _loss(site, values, y):
    with torch.no_grad():
        return float(F.cross_entropy(site.logits(values), y))


@pytest.mark.parametrize("tokens", [False, True], ids=["float", "tokens"])
def test_attacks_increase_the_loss(tokens):
    model = _model(**({"encoder": "embedding", "vocab_size": 11} if tokens else {}))
    x, y = _batch(tokens)
    site = InputSite(model, x)
    assert site.values[0].shape == (16, 20, 8 if tokens else 2)
    clean = _loss(site, site.values, y)
    eps = 0.05
    fg = _loss(site, fgsm(site, y, eps), y)
    g = torch.Generator().manual_seed(0)
    linf = _loss(site, pgd(site, y, eps, "linf", steps=5, generator=g), y)
    l2 = _loss(site, pgd(site, y, eps, "l2", steps=5, generator=g), y)
    noise = _loss(site, [site.values[0] + eps * torch.randn_like(site.values[0]).sign()], y)
    assert fg > clean and linf > clean and l2 > clean
    assert fg - clean > 2 * abs(noise - clean)  # the gradient direction, not just any step of that size
    assert linf >= fg - 1e-9  # PGD starts where FGSM stops at best and keeps ascending


def test_pgd_stays_inside_its_ball_in_both_norms():
    model = _model()
    x, y = _batch()
    site = InputSite(model, x)
    eps = 0.1
    for norm in ("linf", "l2"):
        delta = pgd(site, y, eps, norm, steps=4, alpha=1.0, generator=torch.Generator().manual_seed(2))[0] - x
        if norm == "linf":  # a huge step size would leave the ball without the projection
            assert delta.abs().max() <= eps + 1e-12 and delta.abs().max() > 0.99 * eps
        else:
            r = l2_radius(eps, x)
            norms = delta.flatten(1).norm(dim=1)
            assert r == pytest.approx(eps * (20 * 2) ** 0.5)
            assert (norms <= r * (1 + 1e-12)).all() and norms.max() > 0.99 * r


def test_project_maps_onto_the_ball_and_keeps_points_inside():
    d = torch.randn(5, 7, 3, dtype=torch.float64) * 3
    assert project(d, 0.5, "linf").abs().max() <= 0.5
    p = project(d, 2.0, "l2")
    torch.testing.assert_close(p.flatten(1).norm(dim=1), torch.full((5,), 2.0, dtype=torch.float64))
    small = d * 1e-3
    assert torch.equal(project(small, 2.0, "l2"), small)


def test_zero_budget_returns_the_clean_input_and_bad_arguments_fail():
    model = _model()
    x, y = _batch()
    site = InputSite(model, x)
    assert torch.equal(fgsm(site, y, 0.0)[0], x) and torch.equal(pgd(site, y, 0.0)[0], x)
    with pytest.raises(ValueError, match="norm"):
        pgd(site, y, 0.1, "l1")
    with pytest.raises(ValueError, match="steps"):
        pgd(site, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="eps"):
        fgsm(site, y, -0.1)
