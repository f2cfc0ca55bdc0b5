"""Keras' optimizer update rules written in torch ops, for `aligned` mode (parity.align).

torch.optim and Keras differ where no option reaches: Adam adds epsilon after vs before the
bias correction (adam_epsilon_placement), RMSprop adds it outside vs inside the square root
(rmsprop_epsilon), SGD keeps lr outside vs inside the momentum buffer (sgd_momentum_form).
Each class below repeats keras/src/optimizers/<name>.py `update_step` operation by
operation, in float32 like the Keras variables, so the two frameworks take the same steps.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim import Optimizer


def _dense_and_square(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient summed over duplicate rows, and its square as Keras computes it (align: embedding_sparse_gradient).

    A sparse embedding gradient has one row per token occurrence, like TensorFlow's IndexedSlices;
    Keras squares those rows and only then sums the duplicates, so the square is sum(g_i^2).
    """
    if not grad.is_sparse:
        return grad, torch.square(grad)
    squares = torch.sparse_coo_tensor(grad._indices(), torch.square(grad._values()), grad.shape,
                                      check_invariants=False)  # the indices are those of a valid gradient
    return grad.coalesce().to_dense(), squares.coalesce().to_dense()


def _evaluate(closure) -> torch.Tensor | None:
    """Run the closure (forward and backward) if there is one, as Lightning's automatic optimization expects."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def _scalar(value: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`value` as a 0-d tensor of the parameter's dtype and device (Keras casts every scalar to the variable dtype)."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


class KerasAdam(Optimizer):
    """Keras Adam: alpha = lr*sqrt(1-b2^t)/(1-b1^t); m += (g-m)(1-b1); v += (g^2-v)(1-b2); w -= m*alpha/(sqrt(v)+eps)."""

    def __init__(self, params: Iterable, lr: float, betas: tuple[float, float], eps: float) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(param)
                    state["v"] = torch.zeros_like(param)
                state["step"] += 1
                (grad, grad_square), m, v = _dense_and_square(param.grad), state["m"], state["v"]
                local_step = _scalar(state["step"], param)
                beta1_power = torch.pow(_scalar(beta1, param), local_step)
                beta2_power = torch.pow(_scalar(beta2, param), local_step)
                alpha = _scalar(group["lr"], param) * torch.sqrt(1 - beta2_power) / (1 - beta1_power)
                m.add_((grad - m) * _scalar(1 - beta1, param))
                v.add_((grad_square - v) * _scalar(1 - beta2, param))
                param.sub_((m * alpha) / (torch.sqrt(v) + _scalar(group["eps"], param)))
        return loss


class KerasRMSprop(Optimizer):
    """Keras RMSprop (no momentum, not centered): v = rho*v + (1-rho)*g^2; w -= lr*g/sqrt(v+eps)."""

    def __init__(self, params: Iterable, lr: float, rho: float, eps: float) -> None:
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["v"] = torch.zeros_like(param)
                (grad, grad_square), v = _dense_and_square(param.grad), state["v"]
                rho = _scalar(group["rho"], param)
                v.copy_(rho * v + _scalar(1 - group["rho"], param) * grad_square)
                increment = (_scalar(group["lr"], param) * grad) / torch.sqrt(v + _scalar(group["eps"], param))
                param.sub_(increment)
        return loss


class KerasSGD(Optimizer):
    """Keras SGD: with momentum m = m*mu - g*lr; w += m (lr inside the buffer); without, w -= g*lr."""

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        loss = _evaluate(closure)
        for group in self.param_groups:
            lr_value, momentum = group["lr"], group["momentum"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                lr = _scalar(lr_value, param)
                grad = _dense_and_square(param.grad)[0]
                if momentum == 0:
                    param.sub_(grad * lr)
                    continue
                state = self.state[param]
                if not state:
                    state["m"] = torch.zeros_like(param)
                m = state["m"]
                m.copy_(m * _scalar(momentum, param) - grad * lr)
                param.add_(m)
        return loss


KERAS_RULES = {"KerasAdam": KerasAdam, "KerasRMSprop": KerasRMSprop, "KerasSGD": KerasSGD}


def make_optimizer(name: str, params: Iterable, kwargs: dict) -> Optimizer:
    """The optimizer parity.align.torch_optimizer_config named: a Keras rule from this module or a torch.optim class."""
    cls = KERAS_RULES.get(name) or getattr(torch.optim, name)
    return cls(params, **kwargs)
