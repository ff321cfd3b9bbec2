"""The numerical gradient check (the TwoLayerNet tutorial's lesson), what it costs, and bugs that it catches.

Back-propagation gives every dL/dp in one backward pass. The definition of a derivative gives
each one separately: nudge p by +eps and -eps, run the network forward each time, and take
(L(p + eps) - L(p - eps)) / (2 eps). In float64 the two agree to about 1e-8 when backprop is right;
the check reports, per parameter tensor, the relative error ||a - n|| / (||a|| + ||n||) between
the analytic gradient a and the numerical one n.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.config import TrainConfig
from engine.data import Dataset, scale_pixels
from engine.layers import ACTIVATIONS, Dropout
from engine.model import MLP, build_model, seed_streams
from engine.optim import OPTIMIZERS
from engine.train import batch_order, make_splits

EPS = 1e-6  # the nudge; float64 rounding of the loss is ~1e-16, so the difference quotient keeps ~9 digits
TOLERANCE = 1e-6  # a relative error above this says the backward pass is wrong
PREFIXES = {"Linear": "", "BatchNorm": "bn", "Conv2D": "conv"}  # how parameter names count each kind of layer
KIND_LABELS = {"": "layer", "bn": "batch norm", "conv": "convolution"}
TINY = 1e-30  # a tensor whose gradient is zero both ways has relative error 0, not 0/0
CHECK_BATCH = 16  # examples the check's loss is computed on
MAX_ENTRIES = 100  # entries checked per tensor by default (sampled, seeded); 0 or None checks them all


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||): 0 when they agree, 1 when one is zero or they point opposite ways."""
    diff = float(np.linalg.norm(analytic - numeric))
    return diff / max(float(np.linalg.norm(analytic)) + float(np.linalg.norm(numeric)), TINY)


@dataclass(frozen=True)
class TensorCheck:
    """One parameter tensor's check: the gradients compared on `n_checked` of its entries."""

    name: str  # "0.W", "0.b", "1.W", ... (Linear layer index . parameter), "bn0.gamma", "conv0.W": as models save them
    shape: tuple[int, ...]
    n_checked: int
    relative_error: float
    analytic_norm: float  # of the checked entries
    numeric_norm: float

    @property
    def passed(self) -> bool:
        return self.relative_error <= TOLERANCE

    @property
    def label(self) -> str:
        """'layer 1 weights W (784x64)' for '0.W', 'batch norm 1 gamma (64)' for 'bn0.gamma'."""
        layer, key = self.name.split(".")
        prefix = layer.rstrip("0123456789")
        what = {"W": "weights W", "b": "biases b"}.get(key, key)
        kind = KIND_LABELS.get(prefix, prefix)
        return f"{kind} {int(layer[len(prefix):]) + 1} {what} ({'x'.join(map(str, self.shape))})"


def loss_value(model: MLP, x: np.ndarray, t: np.ndarray) -> float:
    """The batch loss as training computes it (batch norm on the batch's statistics); the model has no dropout."""
    return model.loss.forward(model.forward(x, train=True), t)


def analytic_gradients(model: MLP, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """Backprop's dL/dp for every parameter tensor (copies), by name."""
    model.loss.forward(model.forward(x, train=True), t)
    model.backward(model.loss.backward())
    return {name: layer.grads[k].copy() for name, (layer, k) in parameter_index(model).items()}


def parameter_index(model: MLP) -> dict[str, tuple]:
    """Every parameter tensor by name, in layer order: '0.W' -> (the first Linear layer, 'W'); other layers with
    parameters are counted by kind: 'bn0.gamma' (the first batch norm's), 'conv0.W'."""
    index, counts = {}, {}
    for layer in model.layers:
        if not layer.params:
            continue
        kind = PREFIXES.get(type(layer).__name__, type(layer).__name__.lower())
        n = counts[kind] = counts.get(kind, -1) + 1
        index.update({f"{kind}{n}.{k}": (layer, k) for k in layer.params})
    return index


def check_gradients(model: MLP, x: np.ndarray, t: np.ndarray, eps: float = EPS, max_entries: int | None = None,
                    seed: int = 0) -> list[TensorCheck]:
    """Backprop against central differences for each parameter tensor, on the batch x (n, n_in), t (n,).

    The model should be float64 (build_model(..., dtype=np.float64)) and without dropout; the loss is taken as
    training takes it (batch norm normalizes with the batch's statistics; its running averages are put back after).
    `max_entries`: check at most this many entries per tensor, drawn at random (seeded); None: all.
    """
    x = np.asarray(x, dtype=model.dtype)
    running = [(layer, {k: v.copy() for k, v in layer.state.items()}) for layer in model.layers
               if getattr(layer, "state", None)]
    analytic = analytic_gradients(model, x, t)
    rng = np.random.default_rng(seed)
    checks = []
    with np.errstate(all="ignore"):
        for name, (layer, k) in parameter_index(model).items():
            flat = layer.params[k].reshape(-1)  # a view: nudging it nudges the layer's parameter
            idx = np.arange(flat.size)
            if max_entries and flat.size > max_entries:
                idx = np.sort(rng.choice(flat.size, max_entries, replace=False))
            numeric = np.empty(len(idx))
            for j, i in enumerate(idx):
                old = flat[i]
                flat[i] = old + eps
                plus = loss_value(model, x, t)
                flat[i] = old - eps
                minus = loss_value(model, x, t)
                flat[i] = old
                numeric[j] = (plus - minus) / (2 * eps)
            a = analytic[name].reshape(-1)[idx]
            checks.append(TensorCheck(name, layer.params[k].shape, len(idx), relative_error(a, numeric),
                                      float(np.linalg.norm(a)), float(np.linalg.norm(numeric))))
    for layer, state in running:
        for k, v in state.items():
            layer.state[k][...] = v
    return checks


def gradcheck(model: MLP, x: np.ndarray, t: np.ndarray, eps: float = EPS, max_entries: int | None = None,
              seed: int = 0) -> dict[str, float]:
    """Relative error per parameter tensor ('0.W' -> error), from check_gradients."""
    return {c.name: c.relative_error for c in check_gradients(model, x, t, eps, max_entries, seed)}


def check_batch(cfg: TrainConfig, data: Dataset, n: int = CHECK_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """n training examples drawn with the config's seed, scaled as it says, in float64: (n, n_in), (n,)."""
    idx = np.random.default_rng(seed_streams(cfg.seed)["split"]).choice(len(data.y_train), n, replace=False)
    return scale_pixels(data.x_train[idx], cfg.dataset, cfg.input_scaling, np.float64), data.y_train[idx]


def checking_model(cfg: TrainConfig, data: Dataset, bug: str = "none") -> MLP:
    """The config's network with its initial weights, in float64 and without dropout, broken as `bug` says."""
    model = build_model(cfg.replace(dropout=0.0), data.n_features, data.n_classes, dtype=np.float64)
    model.layers = [layer for layer in model.layers if not isinstance(layer, Dropout)]  # a layer's own dropout too
    return break_backward(model, bug)


# ---------------------------------------------------------------- what each way costs


@dataclass(frozen=True)
class GradientCost:
    """Seconds for one gradient of a training batch each way, and for an epoch of them."""

    n_params: int
    batch_size: int
    batches_per_epoch: int
    backprop_seconds: float  # one forward and one backward pass
    forward_seconds: float  # one forward pass and the loss: the numerical gradient needs 2 per parameter

    @property
    def numerical_seconds(self) -> float:
        return 2 * self.n_params * self.forward_seconds

    @property
    def ratio(self) -> float:
        return self.numerical_seconds / self.backprop_seconds

    @property
    def epoch_backprop_seconds(self) -> float:
        return self.batches_per_epoch * self.backprop_seconds

    @property
    def epoch_numerical_seconds(self) -> float:
        return self.batches_per_epoch * self.numerical_seconds


def _seconds_per_call(fn: Callable[[], object], budget: float) -> float:
    """The fastest of repeated timings of fn(), timed for about `budget` seconds in all."""
    fn()  # warm-up: buffers, caches
    best, spent = math.inf, 0.0
    while spent < budget or best is math.inf:
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
        best, spent = min(best, elapsed), spent + elapsed
    return best


def _one_core():
    """A context with NumPy's BLAS on one thread (threadpoolctl), or nothing where threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def measure_cost(cfg: TrainConfig, data: Dataset, n_train: int | None = None, budget: float = 0.3) -> GradientCost:
    """Time one backprop gradient and one forward pass of the config's float32 network on a training batch, on one core.

    `n_train`: training examples per epoch (default: the config's, after its subset and split).
    """
    model = build_model(cfg.replace(dropout=0.0), data.n_features, data.n_classes)
    b = min(cfg.batch_size, len(data.y_train))
    x = scale_pixels(data.x_train[:b], cfg.dataset, cfg.input_scaling)
    t = data.y_train[:b]

    def backprop() -> None:
        model.loss.forward(model.forward(x, train=True), t)
        model.backward(model.loss.backward())

    with np.errstate(all="ignore"), _one_core():  # on a busy machine, BLAS's threads wait for each other
        backprop_s = _seconds_per_call(backprop, budget)
        forward_s = _seconds_per_call(lambda: loss_value(model, x, t), budget)
    if n_train is None:
        n = len(data.y_train)
        n_train = min(cfg.train_limit or n, n - int(round(n * cfg.val_split)))
    return GradientCost(model.n_params, b, -(-n_train // b), backprop_s, forward_s)


# ---------------------------------------------------------------- breaking the backward pass on purpose

BUGS = {
    "none": "Nothing: the backward pass as it should be",
    "activation_derivative": "Forget the hidden activation's derivative (pass the gradient straight through)",
    "bias_gradient": "Drop the bias gradient (write zeros for dL/db)",
    "reshape_not_transpose": "Send the error back through W.reshape(n_out, n_in) instead of W.T",
    "batch_mean": "Forget to divide the output error by the batch size",
    "sign": "Flip the sign of the output error (t - y instead of y - t)",
}
NEEDS_HIDDEN = ("activation_derivative", "reshape_not_transpose")  # no hidden layer: nothing for them to break


def bugs_for(cfg: TrainConfig) -> list[str]:
    """The bugs that change this network's gradients."""
    return [b for b in BUGS if cfg.hidden_sizes or b not in NEEDS_HIDDEN]


def break_backward(model: MLP, bug: str) -> MLP:
    """Make this model's backward pass wrong in the way `bug` names (its forward pass stays right); returns it."""
    if bug not in BUGS:
        raise ValueError(f"Unknown bug {bug!r}; choose one of {', '.join(BUGS)}")
    loss = model.loss
    forward, backward = loss.forward, loss.backward
    if bug == "activation_derivative":
        for layer in model.layers:
            if isinstance(layer, tuple(ACTIVATIONS.values())):
                layer.backward = lambda grad_out: grad_out
    elif bug == "bias_gradient":
        for lin in model.linears:
            lin.backward = _then_zero_bias(lin, lin.backward)
    elif bug == "reshape_not_transpose":
        for lin in model.linears[1:]:  # the first layer's dL/dx goes nowhere
            lin.backward = _reshaped_back(lin, lin.backward)
    elif bug == "batch_mean":
        seen = {}

        def forward_counting(z, t):
            seen["n"] = len(t)
            return forward(z, t)

        loss.forward = forward_counting
        loss.backward = lambda: backward() * seen["n"]
    elif bug == "sign":
        loss.backward = lambda: -backward()
    return model


def _then_zero_bias(lin, backward):
    def wrong(grad_out):
        grad_in = backward(grad_out)
        lin.grads["b"][...] = 0
        return grad_in
    return wrong


def _reshaped_back(lin, backward):
    def wrong(grad_out):
        backward(grad_out)  # dL/dW and dL/db stay right
        W = lin.params["W"]
        return grad_out @ W.reshape(W.shape[1], W.shape[0])  # the data of W read in the wrong order
    return wrong


@dataclass(frozen=True)
class StepsRun:
    """Per-step batch losses of a short training, and the test accuracy it reached."""

    losses: np.ndarray  # (steps,); NaN after a divergence
    test_acc: float


def train_steps(cfg: TrainConfig, data: Dataset, bug: str = "none", steps: int = 300) -> StepsRun:
    """`steps` optimizer steps of the config's float32 network (its initial weights and batch order), broken as asked.

    Backprop through the layers' forward/backward and the config's optimizer; dropout kept.
    """
    splits = make_splits(cfg, data)
    model = break_backward(build_model(cfg, data.n_features, data.n_classes), bug)
    kwargs = {"weight_decay": cfg.l2}
    if cfg.optimizer == "momentum":
        kwargs["momentum"] = cfg.momentum
    elif cfg.optimizer == "adam":
        kwargs["betas"] = cfg.betas
    optimizer = OPTIMIZERS[cfg.optimizer](model.parameters(), cfg.learning_rate, **kwargs)
    rng = np.random.default_rng(seed_streams(cfg.seed)["shuffle"])
    losses = np.full(steps, np.nan)
    batches: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for s in range(steps):
            if not batches:
                batches = batch_order(rng, len(splits.y_train), cfg.batch_size)[::-1]
            idx = batches.pop()
            xb, tb = splits.x_train[idx], splits.y_train[idx]
            losses[s] = model.loss.forward(model.forward(xb, train=True), tb)
            if not math.isfinite(losses[s]):
                losses[s] = np.nan
                return StepsRun(losses, float("nan"))
            model.backward(model.loss.backward())
            optimizer.step()
        test_acc = float(np.mean(model.forward(splits.x_test, train=False).argmax(axis=1) == splits.y_test))
    return StepsRun(losses, test_acc)


# ---------------------------------------------------------------- text and the command line

FORMULA = ("relative error = ||a - n|| / (||a|| + ||n||), between backprop's gradient a and the central difference "
           "n = (L(p + eps) - L(p - eps)) / (2 eps) of each checked entry p")


def duration_text(seconds: float) -> str:
    """0.00021 -> '0.21 ms', 11.9 -> '11.9 s', 93000 -> '1.1 days', 4e7 -> '1.3 years'."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def table_text(checks: list[TensorCheck]) -> str:
    """The check as a fixed-width table, one line per parameter tensor."""
    width = max(len(c.label) for c in checks)
    lines = [f"{'parameter':{width}}  {'checked':>15}  {'relative error':>14}  verdict"]
    for c in checks:
        checked = f"{c.n_checked}/{math.prod(c.shape)}"
        lines.append(f"{c.label:{width}}  {checked:>15}  {c.relative_error:14.1e}  {'ok' if c.passed else 'WRONG'}")
    return "\n".join(lines)


def cost_text(cost: GradientCost) -> str:
    """Two lines: one gradient each way, and an epoch each way."""
    return (f"One gradient of a batch of {cost.batch_size} ({cost.n_params:,} parameters): backprop "
            f"{duration_text(cost.backprop_seconds)}, numerical {duration_text(cost.numerical_seconds)} "
            f"({cost.ratio:,.0f}x)\n"
            f"One epoch ({cost.batches_per_epoch:,} batches): backprop {duration_text(cost.epoch_backprop_seconds)}, "
            f"numerical {duration_text(cost.epoch_numerical_seconds)}")


def register(subparsers) -> None:
    """`python -m engine gradcheck`: the check on the configured network; exit 1 when a tensor fails."""
    from engine.cli import add_config_arguments

    p = subparsers.add_parser("gradcheck", help="check backprop against central differences (float64)",
                              description=f"Exit status 1 when a relative error exceeds {TOLERANCE:g}. {FORMULA}.")
    add_config_arguments(p)
    p.add_argument("--examples", type=int, default=CHECK_BATCH, help=f"batch size of the check (default {CHECK_BATCH})")
    p.add_argument("--max-entries", type=int, default=MAX_ENTRIES,
                   help=f"entries checked per tensor, sampled (default {MAX_ENTRIES}; 0: all)")
    p.add_argument("--break", dest="bug", choices=list(BUGS), default="none",
                   help="break the backward pass on purpose, to see the check fail")
    p.add_argument("--no-cost", action="store_true", help="skip timing backprop against the numerical gradient")
    p.set_defaults(run=run_cli)


def run_cli(args) -> int:
    from engine.cli import config_from_args, fail
    from engine.data import load_dataset

    try:
        cfg = config_from_args(args)
        data = load_dataset(cfg.dataset)
    except (ValueError, ImportError, FileNotFoundError) as err:
        return fail(str(err))
    if not 1 <= args.examples <= len(data.y_train) or args.max_entries < 0:
        return fail("--examples must be between 1 and the training set's size, --max-entries 0 or more")
    x, t = check_batch(cfg, data, args.examples)
    checks = check_gradients(checking_model(cfg, data, args.bug), x, t, max_entries=args.max_entries or None,
                             seed=cfg.seed)
    print(f"Gradient check of {cfg.layers_text(data.n_features, data.n_classes)} ({cfg.activation}, "
          f"{cfg.output} output, {cfg.loss}) on {args.examples} {cfg.dataset} training examples, float64, "
          f"eps {EPS:g}" + (f", backward pass broken: {BUGS[args.bug]}" if args.bug != "none" else ""))
    print(table_text(checks))
    print(FORMULA + f"; above {TOLERANCE:g} the backward pass is wrong.")
    if not args.no_cost:
        print(cost_text(measure_cost(cfg, data)))
    failed = [c.name for c in checks if not c.passed]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0
