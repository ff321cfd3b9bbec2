"""Optimizers: one update rule each, per-parameter state, as torch.optim.SGD and torch.optim.Adam define them.

`Optimizer(params_and_grads, lr, ...)` takes (param, grad) array pairs; `step()` reads each grad
(dL/dparam, left as it is) and updates its param in place. Weight decay is L2 on the weights only
(arrays of 2 or more dimensions): `weight_decay * p` is added to the gradient. TrainConfig checks
the hyperparameters before an optimizer is built. Faster versions of the same rules: engine/fast/optim.py.
"""

from __future__ import annotations

import numpy as np

ParamsAndGrads = list[tuple[np.ndarray, np.ndarray]]


class Optimizer:
    """Base: `step()` applies `update` to every (param, grad) pair; `state[i]` is parameter i's memory (the arrays
    named in STATE), `steps` the steps taken."""

    STATE: tuple[str, ...] = ()

    def __init__(self, params_and_grads: ParamsAndGrads, lr: float, weight_decay: float = 0.0) -> None:
        self.params_and_grads = list(params_and_grads)
        self.lr, self.weight_decay = lr, weight_decay
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params_and_grads]
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        for (p, g), state in zip(self.params_and_grads, self.state):
            if self.weight_decay and p.ndim >= 2:
                g = g + self.weight_decay * p
            self.update(p, g, state)

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """Change p in place, given its gradient g (L2 included)."""
        raise NotImplementedError

    def state_dict(self, names: list[str]) -> dict[str, np.ndarray]:
        """Copies of the memory, "<param name>.<state>" (names: one per parameter), and "steps"."""
        out = {"steps": np.array(self.steps)}
        for name, (p, _), state in zip(names, self.params_and_grads, self.state, strict=True):
            out.update({f"{name}.{k}": state[k].copy() if k in state else np.zeros_like(p) for k in self.STATE})
        return out

    def load_state_dict(self, arrays: dict[str, np.ndarray], names: list[str]) -> None:
        """Take `state_dict`'s memory back (as copies); a missing or misshapen array is a ValueError."""
        for name, (p, _), state in zip(names, self.params_and_grads, self.state, strict=True):
            for k in self.STATE:
                a = arrays.get(f"{name}.{k}")
                if a is None or a.shape != p.shape:
                    raise ValueError(f"the optimizer state for {name}.{k} is missing or has the wrong shape")
                state[k] = a.astype(p.dtype)
        self.steps = int(arrays["steps"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr:g})"


class SGD(Optimizer):
    """p <- p - lr * g."""

    def update(self, p, g, state):
        p -= self.lr * g


class Momentum(Optimizer):
    """Heavy ball, as torch.optim.SGD(momentum=mu): v <- mu * v + g; p <- p - lr * v (v starts at 0)."""

    STATE = ("v",)

    def __init__(self, params_and_grads, lr, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(params_and_grads, lr, weight_decay)
        self.momentum = momentum

    def update(self, p, g, state):
        v = state.setdefault("v", np.zeros_like(p))
        v *= self.momentum
        v += g
        p -= self.lr * v


class Adam(Optimizer):
    """Adam (Kingma & Ba, Algorithm 1), as torch.optim.Adam.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2  (moment estimates, starting at 0)
    m_hat = m / (1 - b1^t);  v_hat = v / (1 - b2^t)     (bias corrections, t = step number)
    p <- p - lr * m_hat / (sqrt(v_hat) + eps)
    """

    STATE = ("m", "v")

    def __init__(self, params_and_grads, lr, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params_and_grads, lr, weight_decay)
        self.betas, self.eps = betas, eps

    def update(self, p, g, state):
        b1, b2 = self.betas
        t = self.steps
        m = state.setdefault("m", np.zeros_like(p))
        v = state.setdefault("v", np.zeros_like(p))
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(cfg, params_and_grads: ParamsAndGrads, registry: dict = OPTIMIZERS) -> Optimizer:
    """The optimizer a TrainConfig names, over these (param, grad) pairs (`registry`: engine.fast's, for speed)."""
    kwargs = {"weight_decay": cfg.l2}
    if cfg.optimizer == "momentum":
        kwargs["momentum"] = cfg.momentum
    elif cfg.optimizer == "adam":
        kwargs["betas"] = cfg.betas
    return registry[cfg.optimizer](params_and_grads, cfg.learning_rate, **kwargs)
