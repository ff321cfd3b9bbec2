"""The PyTorch backend: the same network, initial weights and batch order as the NumPy engine.

Imported only when asked for. On a GPU the data is put on the device once, each epoch's batch
order travels as one index tensor, and the host reads nothing back until the epoch's evaluation
(a divergence is caught there, at the end of the epoch in which it happened).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from engine.config import TrainConfig
from engine.data import Dataset
from engine.model import MLP, build_model, seed_streams
from engine.train import (
    PROBE_ROWS,
    Checkpoint,
    EarlyStopping,
    EpochResult,
    OnBatch,
    OnCheckpoint,
    ShouldStop,
    batch_order,
    confusion_tuple,
    diverged,
    layer_stats,
    linear_weights,
    make_splits,
)

EVAL_CHUNK = 16384


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("Device 'cuda' was asked for, but PyTorch sees no CUDA GPU here; use 'auto' or 'cpu'.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("Device 'mps' was asked for, but this machine has no Apple GPU; use 'auto' or 'cpu'.")
    return torch.device(name)


class TorchMLP:
    """The engine's MLP written with torch tensors; weights are (n_in, n_out) as in the engine."""

    def __init__(self, cfg: TrainConfig, model: MLP, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.weights = [torch.tensor(lin.params["W"], device=device, requires_grad=True) for lin in model.linears]
        self.biases = [torch.tensor(lin.params["b"], device=device, requires_grad=True) for lin in model.linears]
        self.act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu,
                    "leaky_relu": lambda h: F.leaky_relu(h, 0.01)}[cfg.activation]
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(int(seed_streams(cfg.seed)["dropout"].generate_state(1)[0]))

    def parameters(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def forward(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.addmm(b, x, W)
            if i < last:
                x = self.act(x)
                if train and self.cfg.dropout > 0:
                    keep = torch.rand(x.shape, generator=self.gen, device=self.device) >= self.cfg.dropout
                    x = x * keep / (1 - self.cfg.dropout)
        return x

    def loss(self, z: torch.Tensor, t: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """The engine's losses: a mean over the batch of a sum over outputs (or a sum, for evaluation)."""
        cfg = self.cfg
        if cfg.loss == "cross_entropy" and cfg.output == "softmax":
            return F.cross_entropy(z, t, reduction=reduction)
        T = F.one_hot(t, z.shape[1]).to(z.dtype)
        if cfg.loss == "cross_entropy":
            per_row = F.binary_cross_entropy_with_logits(z, T, reduction="none").sum(1)
        else:
            y = {"sigmoid": torch.sigmoid, "softmax": lambda a: torch.softmax(a, 1),
                 "linear": lambda a: a}[cfg.output](z)
            per_row = ((y - T) ** 2).sum(1)
        return per_row.mean() if reduction == "mean" else per_row.sum()

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, np.ndarray]:
        return evaluate(self, x, y, self.weights[-1].shape[1])

    def copy_to(self, model: MLP) -> None:
        """Weights (and last gradients) back into the NumPy model, so every view of a run sees them."""
        for lin, W, b in zip(model.linears, self.weights, self.biases):
            lin.params["W"][...] = W.detach().cpu().numpy()
            lin.params["b"][...] = b.detach().cpu().numpy()
            if W.grad is not None:
                lin.grads["W"][...] = W.grad.cpu().numpy()


class FusedOptimizer:
    """The update torch.optim.SGD/Adam(fused=True) makes, calling the same fused kernels directly.

    torch.optim imports PyTorch's compiler stack (torch._dynamo) when the first optimizer is built:
    1.5 s on a 2-core CPU and about 5 s on a GPU machine, longer than a whole GPU run. The kernels
    themselves need none of it. L2 applies to weights only, as in the engine. All state lives on
    the device (the step counts too), so a step can be captured in a CUDA graph.

    pieces > 1 hands the kernels the tensors cut into row blocks, about `pieces` in all. On a GPU
    a fused kernel gives each tensor's chunk of 65,536 numbers one thread block, so `keras-mlp`'s
    784x1000 weights kept 12 of an H100's 132 multiprocessors busy; cut into 32 blocks, its
    graphed step takes 110 us instead of 148. The update is elementwise: the same, up to rounding.
    """

    def __init__(self, cfg: TrainConfig, net: TorchMLP, pieces: int = 1) -> None:
        self.cfg = cfg
        # L2 applies to weights only; without it one call of each kernel updates every tensor
        self.groups = [(list(net.weights), cfg.l2), (list(net.biases), 0.0)] if cfg.l2 else \
            [(net.weights + net.biases, 0.0)]
        self.params = net.weights + net.biases
        per_piece = -(-sum(p.numel() for p in self.params) // pieces)
        self.cuts = {id(p): min(len(p), -(-p.numel() // per_piece)) for p in self.params}
        if cfg.optimizer == "adam":
            self.state = {id(p): {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p),
                                  "step": torch.zeros(self.cuts[id(p)], dtype=torch.float32, device=p.device)}
                          for p in self.params}
        elif cfg.optimizer == "momentum":
            self.state = {id(p): {"momentum_buffer": torch.zeros_like(p)} for p in self.params}
        else:
            self.state = {id(p): {} for p in self.params}
        self._lists: tuple[list, list] | None = None  # (the gradients they were cut from, per group lists)

    def _tensor_lists(self) -> list[dict[str, list[torch.Tensor]]]:
        """Per group: params, grads and state as the kernels take them, cut into pieces; remade when a grad is."""
        grads = [p.grad for p in self.params]
        if self._lists is None or any(a is not b for a, b in zip(self._lists[0], grads)):
            groups = []
            for params, _ in self.groups:
                lists: dict[str, list[torch.Tensor]] = {"params": [], "grads": []}
                for p in params:
                    cut = self.cuts[id(p)]
                    lists["params"] += p.detach().tensor_split(cut)  # views the kernels update in place
                    lists["grads"] += p.grad.tensor_split(cut)
                    for name, value in self.state[id(p)].items():
                        lists.setdefault(name, []).extend(value.unbind() if name == "step" else value.tensor_split(cut))
                groups.append(lists)
            self._lists = (grads, groups)
        return self._lists[1]

    def step(self) -> None:
        cfg = self.cfg
        for lists, (_, weight_decay) in zip(self._tensor_lists(), self.groups):
            if cfg.optimizer == "adam":
                torch._foreach_add_(lists["step"], 1)
                torch._fused_adam_(lists["params"], lists["grads"], lists["exp_avg"], lists["exp_avg_sq"], [],
                                   lists["step"], lr=cfg.learning_rate, beta1=cfg.betas[0], beta2=cfg.betas[1],
                                   weight_decay=weight_decay, eps=1e-8, amsgrad=False, maximize=False)
            else:
                # With the buffer starting at zero, mu * 0 + g is the first step's "buffer = g" exactly.
                momentum = cfg.momentum if cfg.optimizer == "momentum" else 0.0
                torch._fused_sgd_(lists["params"], lists["grads"], lists["momentum_buffer"] if momentum else [],
                                  weight_decay=weight_decay, momentum=momentum, lr=cfg.learning_rate,
                                  dampening=0.0, nesterov=False, maximize=False, is_first_step=False)

    def reset(self) -> None:
        """Back to a fresh optimizer: moments, buffers and step counts zero."""
        for state in self.state.values():
            for value in state.values():
                value.zero_()


class TorchOptim:
    """torch.optim's SGD/Adam(fused=True) behind FusedOptimizer's interface: the benchmarks' reference,
    PyTorch as its tutorials use it."""

    def __init__(self, cfg: TrainConfig, net: TorchMLP, capturable: bool = False) -> None:
        groups = [{"params": net.weights, "weight_decay": cfg.l2}, {"params": net.biases, "weight_decay": 0.0}]
        if cfg.optimizer == "adam":
            extra = {"capturable": True} if capturable else {}
            self.optimizer = torch.optim.Adam(groups, lr=cfg.learning_rate, betas=cfg.betas, fused=True, **extra)
        else:
            momentum = cfg.momentum if cfg.optimizer == "momentum" else 0.0
            self.optimizer = torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=momentum, fused=True)
        self.step, self.zero_grad = self.optimizer.step, self.optimizer.zero_grad

    def reset(self) -> None:
        for state in self.optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.zero_()


_ACTIVATIONS = {  # hidden activation written into a given tensor (a strided view of a buffer with a ones column)
    "sigmoid": lambda z, out: torch.sigmoid(z, out=out),
    "tanh": lambda z, out: torch.tanh(z, out=out),
    "relu": lambda z, out: torch.clamp_min(z, 0.0, out=out),
    "leaky_relu": lambda z, out: torch.ops.aten.leaky_relu.out(z, 0.01, out=out),
}
_ACTIVATION_GRADS = {  # dL/dz from dL/dh and the activation's output h, as autograd's own backward kernels
    "sigmoid": torch.ops.aten.sigmoid_backward,
    "tanh": torch.ops.aten.tanh_backward,
    "relu": lambda g, h: torch.ops.aten.threshold_backward(g, h, 0.0),
    "leaky_relu": lambda g, h: torch.ops.aten.leaky_relu_backward(g, h, 0.01, True),
}


def padded(width: int) -> int:
    """Row length in float32s rounded up to 16 bytes: GPU gathers and products then use vector loads."""
    return -(-width // 4) * 4


def ones_after(rows: int, width: int, device: torch.device) -> torch.Tensor:
    """A (rows, padded(width + 1)) buffer whose column `width` is ones: a layer's input goes in [:, :width]."""
    out = torch.zeros((rows, padded(width + 1)), device=device)
    out[:, width] = 1
    return out


def with_ones(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """x (n, d) on `device` followed by a column of ones (`ones_after`): one product gives dW and db together."""
    out = ones_after(len(x), x.shape[1], device)
    out[:, :x.shape[1]].copy_(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return out


class Backprop:
    """One step's forward and backward written out, as the NumPy engine computes them, in few kernels.

    On a GPU a small MLP's step takes the sum of its kernels' times, each 1-10 us however small.
    Autograd's `notebook-mse` step launches 50: it zeroes and accumulates gradients, computes the
    loss value (the gradient does not need it) and reduces each bias gradient on its own. Here
    each layer's input carries a column of ones, so one product gives its weight and bias
    gradients into one buffer (W.grad and b.grad are views of it); the batch mean's 1/n (2/n for
    squared error) rides on that product; the output layer's gradient is the engine's closed
    form; rows are padded to 16 bytes. The step is 21 kernels: 61 us in a CUDA graph on an H100
    (with FusedOptimizer's pieces), against 103 us for autograd with torch.optim.
    """

    def __init__(self, net: TorchMLP, cfg: TrainConfig, X1: torch.Tensor, T: torch.Tensor, batch: int) -> None:
        self.net, self.cfg, self.X1, self.T = net, cfg, X1, T
        self.act, self.act_grad = _ACTIVATIONS[cfg.activation], _ACTIVATION_GRADS[cfg.activation]
        dev = X1.device
        self.grads = [torch.zeros((W.shape[0] + 1, W.shape[1]), device=dev) for W in net.weights]
        for W, b, G in zip(net.weights, net.biases, self.grads):
            W.grad, b.grad = G[:-1], G[-1]
        self.hidden = [ones_after(batch, W.shape[1], dev) for W in net.weights[:-1]]
        self.n_classes = net.weights[-1].shape[1]
        self.scale = 2.0 if cfg.loss == "mse" else 1.0

    @torch.no_grad()
    def __call__(self, sel: torch.Tensor) -> None:
        cfg, net, n = self.cfg, self.net, len(sel)
        inputs = [self.X1[sel]]  # each layer's input, ones column included
        masks = []
        for W, b, buf in zip(net.weights, net.biases, self.hidden):
            z = torch.addmm(b, inputs[-1][:, :W.shape[0]], W)
            h = buf[:n, :W.shape[1]]
            if cfg.dropout > 0:
                keep = torch.rand(z.shape, generator=net.gen, device=z.device) >= cfg.dropout
                a = self.act(z, z)
                masks.append((a, keep))
                torch.div(a * keep, 1 - cfg.dropout, out=h)
            else:
                self.act(z, h)
            inputs.append(buf[:n])
        z = torch.addmm(net.biases[-1], inputs[-1][:, :net.weights[-1].shape[0]], net.weights[-1])
        delta = self._output_delta(z, self.T[sel][:, :self.n_classes])
        for i in range(len(net.weights) - 1, -1, -1):
            width = net.weights[i].shape[0]
            self.grads[i].addmm_(inputs[i][:, :width + 1].T, delta, beta=0.0, alpha=self.scale / n)
            if i:
                dh = torch.mm(delta, net.weights[i].T)
                if cfg.dropout > 0:
                    a, keep = masks[i - 1]
                    delta = self.act_grad(dh * keep / (1 - cfg.dropout), a)
                else:
                    delta = self.act_grad(dh, inputs[i][:, :width])

    def _output_delta(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """dL/dz up to the factor self.scale / n: (y - t) for cross-entropy, (y - t) * f'(z) for squared error."""
        out = self.cfg.output
        if out == "linear":
            return z.sub_(t)
        y = torch.softmax(z, 1) if out == "softmax" else z.sigmoid_()
        if self.cfg.loss == "cross_entropy":
            return y.sub_(t)
        if out == "sigmoid":
            return torch.ops.aten.sigmoid_backward(y - t, y)
        return torch._softmax_backward_data(y - t, y, 1, y.dtype)


class TrainStep:
    """One optimisation step on the rows `sel` of (X1, Y); on CUDA, full batches replay a captured graph.

    X1 is the inputs with a column of ones (`with_ones`). The backend steps with `Backprop` and
    PyTorch's fused optimizer kernels; torch_optim=True steps as PyTorch's tutorials do (autograd,
    torch.optim), the benchmarks' reference. A CUDA graph turns a step's kernel launches into one
    replay: a small MLP on a GPU is bound by launches. Capturing needs warm-up steps: the weights
    and optimizer state are put back afterwards, so the run is the same as an eager one.
    """

    def __init__(self, net: TorchMLP, cfg: TrainConfig, X1: torch.Tensor, Y: torch.Tensor, use_graph: bool,
                 torch_optim: bool = False) -> None:
        self.net, self.X1, self.Y, self.batch_size = net, X1, Y, min(cfg.batch_size, len(Y))
        if torch_optim:
            self.optimizer = TorchOptim(cfg, net, capturable=use_graph)
            self.backprop = None
        else:
            # in a graph, cut tensors keep more of the GPU busy; eagerly, each piece costs host time
            self.optimizer = FusedOptimizer(cfg, net, pieces=32 if use_graph else 1)
            n_classes = net.weights[-1].shape[1]
            T = torch.eye(n_classes, padded(n_classes), device=X1.device)[Y]  # one-hot targets, gathered by batch
            self.backprop = Backprop(net, cfg, X1, T, self.batch_size)
        self.graph = self._capture() if use_graph else None

    def _body(self, sel: torch.Tensor) -> None:
        if self.backprop is not None:
            self.backprop(sel)
        else:
            # optimizer.zero_grad() as tutorials call it: since PyTorch 2.0 it drops the gradients and backward
            # writes fresh ones; zeroing them in place and adding into them made the reference 10-13% slower
            self.optimizer.zero_grad(set_to_none=True)
            x = self.X1[sel][:, :self.net.weights[0].shape[0]]
            loss = self.net.loss(self.net.forward(x, train=True), self.Y[sel])
            loss.backward()
        self.optimizer.step()

    def __call__(self, sel: torch.Tensor) -> None:
        if self.graph is not None and len(sel) == self.batch_size:
            self.static_sel.copy_(sel)
            self.graph.replay()
        else:
            self._body(sel)

    def _capture(self) -> torch.cuda.CUDAGraph | None:
        """Capture one step; if this GPU or PyTorch build refuses, steps run eagerly instead.

        Dropout's generator is registered with the graph, so each replay draws new masks, the
        same ones the eager steps would draw: its state is put back after the warm-up too.
        """
        params = self.net.parameters()
        saved = [p.detach().clone() for p in params]
        rng_state = self.net.gen.get_state()
        self.static_sel = torch.arange(self.batch_size, device=self.X1.device)
        graph = torch.cuda.CUDAGraph()
        try:
            if self.net.cfg.dropout > 0:
                graph.register_generator_state(self.net.gen)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._body(self.static_sel)
            torch.cuda.current_stream().wait_stream(side)
            with torch.cuda.graph(graph):
                self._body(self.static_sel)
        except (RuntimeError, AttributeError):  # AttributeError: a PyTorch without register_generator_state
            graph = None
        with torch.no_grad():  # undo the warm-up: back to the initial weights and a fresh optimizer
            for p, v in zip(params, saved):
                p.copy_(v)
                if p.grad is not None:
                    p.grad.zero_()
            self.optimizer.reset()
        self.net.gen.set_state(rng_state)
        return graph


def torch_train(cfg: TrainConfig, data: Dataset, model: MLP | None = None, should_stop: ShouldStop | None = None,
                on_batch: OnBatch | None = None, resume: Checkpoint | None = None,
                on_checkpoint: OnCheckpoint | None = None, cuda_graphs: bool | None = None,
                torch_optim: bool = False) -> Iterator[EpochResult]:
    """Same contract as engine.train.train; cuda_graphs=None uses them on CUDA.

    torch_optim=True steps with torch.optim instead of calling its kernels (the benchmarks' reference).
    A network with layers other than dense ones (convolutions, pooling, dropout layers) trains with
    autograd instead, in engine/backends/torch_layers.py.
    """
    from engine.backends import torch_layers  # (it imports this module)

    device = resolve_device(cfg.device)
    model = model or build_model(cfg, data.n_features, data.n_classes)
    if not torch_layers.dense_path_fits(model):
        yield from torch_layers.generic_train(cfg, data, model, device, should_stop, on_batch, resume, on_checkpoint)
        return
    splits = make_splits(cfg, data)
    net = TorchMLP(cfg, model, device)

    def put(a):
        return None if a is None else torch.tensor(a, device=device)  # a copy: dataset arrays are read-only

    X1, Y = with_ones(splits.x_train, device), put(splits.y_train)
    evals = {"train": (X1[:, :splits.x_train.shape[1]], Y), "test": (put(splits.x_test), put(splits.y_test))}
    if splits.x_val is not None:
        evals["val"] = (put(splits.x_val), put(splits.y_val))
    if cuda_graphs is None:
        cuda_graphs = device.type == "cuda"
    step = TrainStep(net, cfg, X1, Y, use_graph=cuda_graphs, torch_optim=torch_optim)
    states = None if torch_optim else [step.optimizer.state[id(p)] for p in net.parameters()]
    yield from torch_fit(cfg, model, splits, net, step, evals, (net.parameters(), states), should_stop, on_batch,
                         resume, on_checkpoint)


TEXTBOOK_STATE = {"exp_avg": "m", "exp_avg_sq": "v", "momentum_buffer": "v"}  # torch.optim's names -> engine/optim's


def textbook_state(states: list[dict], names: list[str], steps: int) -> dict[str, np.ndarray]:
    """A checkpoint's optimizer memory (engine/optim.py's names) from each parameter's torch.optim-style state."""
    out = {"steps": np.array(steps)}
    for name, state in zip(names, states, strict=True):
        for key, value in state.items():
            if key in TEXTBOOK_STATE and value is not None:
                out[f"{name}.{TEXTBOOK_STATE[key]}"] = value.detach().cpu().numpy().copy()
    return out


@torch.no_grad()
def load_textbook_state(cfg: TrainConfig, arrays: dict[str, np.ndarray], names: list[str],
                        params: list[torch.Tensor], states: list[dict]) -> None:
    """Fill each parameter's torch.optim-style state in place from a checkpoint's optimizer memory."""
    keys = {"adam": ("exp_avg", "exp_avg_sq"), "momentum": ("momentum_buffer",)}.get(cfg.optimizer, ())
    for name, p, state in zip(names, params, states, strict=True):
        for key in keys:
            value = arrays.get(f"{name}.{TEXTBOOK_STATE[key]}")
            if value is None or value.shape != tuple(p.shape):
                raise ValueError(f"the optimizer state for {name}.{TEXTBOOK_STATE[key]} is missing or has the "
                                 "wrong shape")
            value = torch.as_tensor(value, dtype=p.dtype, device=p.device)
            if key in state:
                state[key].copy_(value)
            else:
                state[key] = value.clone()
        if cfg.optimizer == "adam":
            if "step" in state:
                state["step"].fill_(int(arrays["steps"]))
            else:
                state["step"] = torch.tensor(float(arrays["steps"]))


def torch_fit(cfg: TrainConfig, model: MLP, splits, net, step, evals: dict, optimizer: tuple[list, list | None],
              should_stop: ShouldStop | None, on_batch: OnBatch | None, resume: Checkpoint | None,
              on_checkpoint: OnCheckpoint | None) -> Iterator[EpochResult]:
    """The torch epoch loop, for TorchMLP and torch_layers.TorchNet alike: `step(sel)` trains the rows `sel`;
    `optimizer` = (the torch parameters in the model's parameter order, each one's state dict)."""
    device = net.device
    rng = np.random.default_rng(seed_streams(cfg.seed)["shuffle"])
    names = model.parameter_names()
    params, states = optimizer
    history: list[EpochResult] = []
    early = EarlyStopping(cfg, model)
    if resume is not None:
        if states is None:
            raise ValueError("Resuming needs the backend's own optimizer (not torch_optim)")
        history = list(resume.history)
        rng.bit_generator.state = resume.random["shuffle"]
        if resume.random.get("dropout") is not None:
            try:
                net.gen.set_state(torch.tensor(resume.random["dropout"], dtype=torch.uint8))
            except RuntimeError:  # a checkpoint from another device's generator: new masks, the rest as it was
                pass
        load_textbook_state(cfg, resume.optimizer, names, params, states)
        early.recall(resume.early, resume.best_weights)
    probe = splits.x_test[:PROBE_ROWS]
    before = linear_weights(model)  # the weights each epoch starts from: its update ratio's reference
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        batches = batch_order(rng, len(splits.y_train), cfg.batch_size)
        order = torch.from_numpy(np.concatenate(batches)).to(device)
        start = 0
        for b, idx in enumerate(batches, 1):
            step(order[start:start + len(idx)])
            start += len(idx)
            if on_batch is not None:
                on_batch(b, len(batches), None)  # reading the loss back would make the host wait
            if should_stop is not None and should_stop():
                net.copy_to(model)
                return
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the GPU works behind the host: train_seconds ends when it is done
        t1 = time.perf_counter()
        metrics = {name: net.evaluate(x, y) for name, (x, y) in evals.items()}  # the host waits here
        if not all(math.isfinite(loss) for loss, _, _ in metrics.values()):
            raise diverged(cfg, history, epoch, len(batches))  # the model keeps the last finite epoch's weights
        net.copy_to(model)
        stats = layer_stats(model, probe, before)
        before = linear_weights(model)
        t2 = time.perf_counter()
        val = metrics.get("val", (None, None, None))
        result = EpochResult(epoch, *metrics["train"][:2], *metrics["test"][:2], val[0], val[1],
                             t2 - t0, t1 - t0, t2 - t1, stats, confusion_tuple(metrics["test"][2]))
        result = early.check(result)
        history.append(result)
        if on_checkpoint is not None and states is not None:
            on_checkpoint(Checkpoint(list(history), textbook_state(states, names, epoch * len(batches)),
                                     {"shuffle": rng.bit_generator.state,
                                      "dropout": net.gen.get_state().tolist()},
                                     early.memory(), early.best_weights))
        try:
            yield result
        finally:  # early stopping: the model keeps the best epoch's weights, also where the caller stops asking here
            if early.stopped:
                early.restore()
        if early.stopped:
            return


@torch.no_grad()
def evaluate(net, x: torch.Tensor, y: torch.Tensor, k: int, chunk: int = EVAL_CHUNK) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and the (k, k) confusion counts (row = true class) of a TorchMLP or torch_layers.TorchNet
    over a whole split, `chunk` rows per forward pass."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    counts = torch.zeros(k * k, dtype=torch.int64, device=x.device)
    for i in range(0, len(x), chunk):
        z = net.forward(x[i:i + chunk], train=False)
        t = y[i:i + chunk]
        total += net.loss(z, t, reduction="sum").double()
        counts += torch.bincount(t * k + z.argmax(1), minlength=k * k)
    counts = counts.reshape(k, k).cpu().numpy()
    return total.item() / len(x), float(np.trace(counts)) / len(x), counts


def prewarm(device: str = "auto") -> None:
    """Pay PyTorch's one-time costs before a run needs them: a GPU needs its context and cuBLAS initialised."""
    device = resolve_device(device)
    if device.type != "cpu":
        a = torch.ones(64, 64, device=device)
        (a @ a).sum().item()
