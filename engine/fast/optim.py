"""The textbook optimizers (engine/optim.py) made fast: the same updates, in fewer passes over memory.

`step()` uses each gradient array as scratch space: gradients are consumed by the step.
Every rule is elementwise, so a step can also be applied in parts (`begin_step()`, then
`update_rows(i, rows)` over disjoint row ranges), which is how the parallel engine shares it out.

Gradients may arrive already multiplied by a factor (`step(scaled_by=...)`): a training loop folds
`grad_scale` into the loss gradient (MLP.train_step_loss), where it costs nothing. For SGD and
momentum that is the learning rate, which saves each of them a pass: SGD's step is p -= g.
"""

from __future__ import annotations

import math

import numpy as np

from engine import optim as textbook
from engine.fast import blas


class FastOptimizer(textbook.Optimizer):
    """Base: `step(scaled_by)` applies the update to every (param, gradient times scaled_by) pair in place."""

    def __init__(self, params_and_grads: textbook.ParamsAndGrads, lr: float, weight_decay: float = 0.0) -> None:
        super().__init__(params_and_grads, lr, weight_decay)
        self._state_made = False

    @property
    def grad_scale(self) -> float:
        """The factor this rule's update wants its gradients multiplied by (see the module's docstring)."""
        return 1.0

    def step(self, scaled_by: float = 1.0) -> None:
        """Update every parameter from its gradient, which is `scaled_by` times dL/dp."""
        self.begin_step()
        rescale = self.grad_scale / scaled_by
        for (p, g), state in zip(self.params_and_grads, self.state):
            self._apply(p, g, state, rescale)

    def begin_step(self) -> None:
        """Count the step and make any missing state, before `update_rows` calls (which may run in threads)."""
        self.steps += 1
        if not self._state_made:  # once: a step's bookkeeping is paid on every batch
            for (p, _), state in zip(self.params_and_grads, self.state):
                if not state:
                    state.update(self.new_state(p))
            self._state_made = True

    def update_rows(self, i: int, rows: slice, scaled_by: float = 1.0) -> None:
        """Apply this step's update to rows `rows` of parameter `i` (its first axis)."""
        p, g = self.params_and_grads[i]
        self._apply(p[rows], g[rows], {k: v[rows] for k, v in self.state[i].items()}, self.grad_scale / scaled_by)

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], rescale: float) -> None:
        """`rescale` turns the gradient as given into grad_scale times dL/dp."""
        if rescale != 1.0:
            g *= rescale
        if self.weight_decay and p.ndim >= 2:
            g += (self.weight_decay * self.grad_scale) * p
        self.update(p, g, state)

    def new_state(self, p: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def to_textbook(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A parameter's memory in engine/optim.py's names and units (new arrays)."""
        return {}

    def from_textbook(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The inverse of `to_textbook`."""
        return {}

    def state_dict(self, names: list[str]) -> dict[str, np.ndarray]:
        """As the textbook optimizer's: its names and units, so a checkpoint is the same whichever step wrote it."""
        out = {"steps": np.array(self.steps)}
        for name, (p, _), state in zip(names, self.params_and_grads, self.state, strict=True):
            book = self.to_textbook(state) if state else {k: np.zeros_like(p) for k in self.STATE}
            out.update({f"{name}.{k}": a for k, a in book.items()})
        return out

    def load_state_dict(self, arrays: dict[str, np.ndarray], names: list[str]) -> None:
        super().load_state_dict(arrays, names)  # in the textbook's names: converted now
        for state in self.state:
            fast = self.from_textbook(state)
            state.clear()
            state.update(fast)
        self._state_made = True

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """Apply the rule; `g` is grad_scale times the gradient (L2 included) and may be overwritten."""
        raise NotImplementedError

class FastSGD(FastOptimizer):
    """p -= lr * g, with g arriving as lr * g where the training loop folds the rate in."""

    @property
    def grad_scale(self) -> float:
        return self.lr

    def update(self, p, g, state):
        p -= g


class FastMomentum(FastOptimizer):
    """Heavy ball, as torch.optim.SGD(momentum=mu): v = mu v + g; p -= lr v.

    The buffer is kept in units of lr (lr v = mu (lr v) + lr g), so with the rate folded into the
    gradient a step is three passes, not four; two where BLAS makes the buffer's multiply-add one (blas.scaled_add).
    """

    STATE = ("v",)

    def __init__(self, params_and_grads, lr, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(params_and_grads, lr, weight_decay)
        self.momentum = momentum

    @property
    def grad_scale(self) -> float:
        return self.lr

    def new_state(self, p):
        return {"momentum_buffer": np.zeros_like(p)}  # mu * 0 + g is the first step's "buffer = g" exactly

    def to_textbook(self, state):
        return {"v": state["momentum_buffer"] / self.lr}

    def from_textbook(self, state):
        return {"momentum_buffer": state["v"] * self.lr}

    def update(self, p, g, state):
        v = state["momentum_buffer"]  # lr v
        if not blas.scaled_add(1.0, g, self.momentum, v):
            v *= self.momentum
            v += g
        p -= v


class FastAdam(FastOptimizer):
    """Adam with bias correction, as torch.optim.Adam and engine.optim.Adam.

    Stored moments are scaled so each update is a multiply-add with no temporaries:
    M = m / (1 - b1) and V = v / (1 - b2) follow M = b1 M + g and V = b2 V + g^2: ten passes over
    each parameter, none allocating and no scratch array. For big layers engine.parallel shares
    these passes out over cores.
    """

    def __init__(self, params_and_grads, lr, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params_and_grads, lr, weight_decay)
        self.betas, self.eps = betas, eps

    STATE = ("m", "v")

    def new_state(self, p):
        return {"M": np.zeros_like(p), "V": np.zeros_like(p)}

    def to_textbook(self, state):
        b1, b2 = self.betas
        return {"m": (1 - b1) * state["M"], "v": (1 - b2) * state["V"]}

    def from_textbook(self, state):
        b1, b2 = self.betas
        return {"M": state["m"] / (1 - b1), "V": state["v"] / (1 - b2)}

    def update(self, p, g, state):
        b1, b2 = self.betas
        # p -= lr/bc1 * m / (sqrt(v/bc2) + eps), rewritten in M and V:
        # p -= c * M / (sqrt(V) + e), c = lr (1-b1)/bc1 / sqrt((1-b2)/bc2), e = eps / sqrt((1-b2)/bc2)
        k = math.sqrt((1 - b2) / (1 - b2 ** self.steps))
        c = self.lr * (1 - b1) / (1 - b1 ** self.steps) / k
        _adam_block(p, g, state["M"], state["V"], b1, b2, c, self.eps / k)


def _adam_block(p, g, M, V, b1, b2, c, e):
    """Once g^2 is in V, g is free: the rest of the update is computed in it (four arrays in cache, not five)."""
    if not blas.scaled_add(1.0, g, b1, M):  # M = b1 M + g
        M *= b1
        M += g
    np.square(g, out=g)
    if not blas.scaled_add(1.0, g, b2, V):  # V = b2 V + g^2
        V *= b2
        V += g
    np.sqrt(V, out=g)
    g += e
    np.divide(M, g, out=g)
    if not blas.scaled_add(-c, g, 1.0, p):  # p -= c M / (sqrt(V) + e)
        g *= c
        p -= g


FAST_OPTIMIZERS = {"sgd": FastSGD, "momentum": FastMomentum, "adam": FastAdam}
