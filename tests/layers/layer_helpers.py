"""Helpers shared by the layer tests: the step-by-step loop every layer is checked against, relative error."""
import torch


def run_steps(layer, x, state=None, **step_kwargs):
    """Feed x (B, L, H) through `layer.step` one position at a time -> (y (B, L, H), final state)."""
    st = layer.default_state(x.shape[0], dtype=x.dtype) if state is None else state
    ys = []
    for t in range(x.shape[1]):
        y, st = layer.step(x[:, t], st, **step_kwargs)
        ys.append(y)
    return torch.stack(ys, 1), st


def rel(a, b):
    """max |a - b| / max |b|."""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
