"""A run's configuration written out as one standalone, commented training script: NumPy only, or PyTorch.

The NumPy script is the textbook path inlined (engine/layers, losses, optim and the training loop),
with only the pieces the configuration uses. Both scripts draw the initial weights, the split and
the batch order from the same seeded NumPy generators as MLP Lab, so they print MLP Lab's losses:
the NumPy one to float rounding (the `textbook` backend), the PyTorch one within the torch
backend's tolerance. `python -m engine export --preset P [train flags] --to numpy|torch > run.py`.
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap

from engine.config import ACTIVATION_CHOICES, INIT_CHOICES, LOSS_CHOICES, OPTIMIZER_CHOICES, TrainConfig
from engine.data import IDX_FILES, PIXEL_STATS

TARGETS = {"numpy": "NumPy", "torch": "PyTorch"}
EVAL_CHUNK = 8192  # rows per evaluation pass, as engine.model.EVAL_CHUNK: the same sums in the same order


class ExportError(ValueError):
    """The configuration uses options the exported script cannot write; the message names them."""


IDX_DATASETS = ("mnist", "fashion-mnist")  # what the scripts can read: the IDX files
# The TrainConfig fields the scripts write; any other field away from its default is named as not written.
WRITTEN = ("dataset", "hidden_sizes", "activation", "output", "loss", "optimizer", "learning_rate", "momentum", "betas",
           "batch_size", "epochs", "init", "input_scaling", "l2", "dropout", "val_split", "train_limit", "seed",
           "backend", "device")


def unsupported(cfg: TrainConfig) -> list[str]:
    """Sentences naming each option of cfg that the exported scripts cannot write (empty: it exports)."""
    problems = []
    if cfg.dataset not in IDX_DATASETS:
        problems.append(f"the dataset {cfg.dataset!r} (the scripts read MNIST-format IDX files: "
                        f"{' or '.join(IDX_DATASETS)})")
    layers = [h for h in cfg.hidden_sizes if not isinstance(h, int)]
    if layers:
        problems.append(f"the layers {', '.join(map(str, layers))} (the scripts write dense layers of a width only)")
    for f in dataclasses.fields(cfg):
        if f.name not in WRITTEN and getattr(cfg, f.name) != f.default:
            problems.append(f"{f.metadata.get('label', f.name).lower()} = {getattr(cfg, f.name)!r}")
    return problems


def export_script(cfg: TrainConfig, target: str = "numpy") -> str:
    """The script's source for cfg; an ExportError names the options it cannot write."""
    if target not in TARGETS:
        raise ExportError(f"Unknown export target {target!r}; choose one of: {', '.join(TARGETS)}.")
    problems = unsupported(cfg)
    if problems:
        raise ExportError("The script cannot write " + "; ".join(problems) + ".")
    head = textwrap.dedent(_imports(target)).strip("\n") + "\n\n" + _constants(cfg, target)
    parts = [_header(cfg, target), head, DATA, _scale(cfg), _split(cfg), _init(cfg)]
    parts += _numpy_parts(cfg) if target == "numpy" else _torch_parts(cfg)
    return "\n\n\n".join(textwrap.dedent(p).strip("\n") for p in parts if p) + "\n"


def script_name(cfg: TrainConfig, target: str) -> str:
    """A file name for the download: 'mlp_mnist_64-16_numpy.py'."""
    return f"mlp_{cfg.dataset.replace('-', '_')}_{cfg.architecture.replace(' ', '_')}_{target}.py"


# ---------------------------------------------------------------- shared pieces


def _header(cfg: TrainConfig, target: str) -> str:
    opt = OPTIMIZER_CHOICES[cfg.optimizer] + f", learning rate {cfg.learning_rate:g}"
    if cfg.optimizer == "momentum":
        opt += f", momentum {cfg.momentum:g}"
    elif cfg.optimizer == "adam":
        opt += f", betas {cfg.betas[0]:g}, {cfg.betas[1]:g}"
    extras = []
    if cfg.l2:
        extras.append(f"L2 weight decay {cfg.l2:g}")
    if cfg.dropout:
        extras.append(f"dropout {cfg.dropout:g}")
    if cfg.val_split:
        extras.append(f"a {cfg.val_split:g} validation split")
    if cfg.train_limit:
        extras.append(f"a training subset of {cfg.train_limit:,}")
    hidden = f"{ACTIVATION_CHOICES[cfg.activation]} hidden units, " if cfg.hidden_sizes else "no hidden layer, "
    same = ("MLP Lab's `textbook` backend prints, to float rounding" if target == "numpy" else
            "MLP Lab prints, within float32 rounding (and, with dropout, the torch backend's masks)")
    needs = "NumPy" if target == "numpy" else "PyTorch (and NumPy, to draw MLP Lab's initial weights and batch order)"
    about = (f"Network {cfg.layers_text()}: {hidden}{cfg.output} output, {LOSS_CHOICES[cfg.loss].lower()}. "
             f"Training: {opt}, batches of {cfg.batch_size}, {cfg.epochs} epoch{'s' * (cfg.epochs != 1)}, "
             f"initial weights {INIT_CHOICES[cfg.init]}, seed {cfg.seed}{''.join(', ' + e for e in extras)}.")
    why = ("The initial weights, the split and the batch order come from the same seeded NumPy generators as in "
           f"MLP Lab, so the line printed after each epoch is the one {same}.")
    paragraphs = [f"An MLP trained on {cfg.dataset}, exported from MLP Lab as a standalone {TARGETS[target]} script.",
                  about, why, f"Run:  python {script_name(cfg, target)} --data data/{cfg.dataset}  (a folder holding "
                  f"the four IDX files, gzipped or not). Needs {needs}."]
    return '"""' + "\n\n".join(textwrap.fill(p, 110) for p in paragraphs) + '\n"""'


def _imports(target: str) -> str:
    torch = "\n        import torch\n        import torch.nn.functional as F" if target == "torch" else ""
    return f'''
        import argparse
        import gzip
        import time
        from pathlib import Path

        import numpy as np{torch}
    '''


def _constants(cfg: TrainConfig, target: str) -> str:
    lines = [f"DATASET = {cfg.dataset!r}", f"HIDDEN_SIZES = {tuple(cfg.hidden_sizes)!r}  # widths of the hidden layers",
             f"LEARNING_RATE = {cfg.learning_rate!r}", f"BATCH_SIZE = {cfg.batch_size!r}", f"EPOCHS = {cfg.epochs!r}",
             f"SEED = {cfg.seed!r}  # one number behind every random draw"]
    if cfg.optimizer == "momentum":
        lines.append(f"MOMENTUM = {cfg.momentum!r}")
    if cfg.optimizer == "adam":
        lines.append(f"BETAS = {tuple(cfg.betas)!r}  # decay rates of Adam's two moment estimates")
    if cfg.l2:
        lines.append(f"L2 = {cfg.l2!r}  # weight decay, on the weights (not the biases)")
    if cfg.dropout:
        lines.append(f"DROPOUT = {cfg.dropout!r}  # probability of dropping a hidden unit while training")
    if cfg.train_limit:
        lines.append(f"TRAIN_LIMIT = {cfg.train_limit!r}  # train on a random subset of this many examples")
    if cfg.val_split:
        lines.append(f"VAL_SPLIT = {cfg.val_split!r}  # share of the training set held out for validation")
    if target == "torch":
        lines.append(f"DEVICE = {cfg.device!r}  # auto: a CUDA GPU if there is one, else Apple's MPS, else the CPU")
    lines += ["N_CLASSES = 10", f"EVAL_CHUNK = {EVAL_CHUNK}  # rows per evaluation pass"]
    streams = ("# One seed, four independent random streams, spawned in MLP Lab's order: initial weights, the split,\n"
               "# the batch order, dropout.\n"
               "INIT_STREAM, SPLIT_STREAM, SHUFFLE_STREAM, DROPOUT_STREAM = np.random.SeedSequence(SEED).spawn(4)")
    return "\n".join(lines) + "\n" + streams


DATA = f'''
    IDX_FILES = {IDX_FILES!r}


    def read_idx(path: Path) -> np.ndarray:
        """An IDX file (gzipped when named .gz) as a uint8 array: images (n, rows, cols) or labels (n,)."""
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 3:
            raise ValueError(f"{{path}}: not an IDX file of bytes (magic number {{raw[:4].hex()}})")
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
        if len(raw) != 4 + 4 * ndim + int(np.prod(dims)):
            raise ValueError(f"{{path}}: {{len(raw)}} bytes do not match its dimensions {{dims}}")
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


    def load_idx_folder(folder: Path) -> tuple[np.ndarray, ...]:
        """x_train (n, 784) uint8, y_train (n,) int64, x_test, y_test from the four IDX files in folder."""
        arrays = []
        for stem in IDX_FILES:
            path = next((p for p in (folder / f"{{stem}}.gz", folder / stem) if p.exists()), None)
            if path is None:
                raise SystemExit(f"{{folder}}: {{stem}}.gz is missing; pass the folder with --data")
            arrays.append(read_idx(path))
        x_train, y_train, x_test, y_test = arrays
        return (x_train.reshape(len(x_train), -1), y_train.astype(np.int64),
                x_test.reshape(len(x_test), -1), y_test.astype(np.int64))
'''


def _scale(cfg: TrainConfig) -> str:
    if cfg.input_scaling == "standardize":
        mean, std = PIXEL_STATS[cfg.dataset]
        return f'''
            PIXEL_MEAN, PIXEL_STD = {mean!r}, {std!r}  # of the training pixels after / 255


            def scale(pixels: np.ndarray) -> np.ndarray:
                """uint8 pixels -> float32 inputs, standardized: (x / 255 - mean) / std."""
                x = pixels.astype(np.float32)
                x *= np.float32(1 / (255 * PIXEL_STD))
                x -= np.float32(PIXEL_MEAN / PIXEL_STD)
                return x
        '''
    return '''
        def scale(pixels: np.ndarray) -> np.ndarray:
            """uint8 pixels -> float32 inputs in [0, 1]."""
            x = pixels.astype(np.float32)
            x *= np.float32(1 / 255)
            return x
    '''


def _split(cfg: TrainConfig) -> str:
    if not (cfg.train_limit or cfg.val_split):
        return '''
            def split(x_train, y_train, x_test, y_test) -> dict:
                """The splits the training uses, as float32 inputs and int64 labels: the whole training set."""
                return {"train": (scale(x_train), y_train), "test": (scale(x_test), y_test)}
        '''
    lines = ["n = len(y_train)"]
    if cfg.val_split:
        lines += ["order = np.random.default_rng(SPLIT_STREAM).permutation(n)",
                  "n_val = round(n * VAL_SPLIT)",
                  "val, train = order[:n_val], order[n_val:]  # validation rows first, then the training rows"]
    else:
        lines += ["train = np.random.default_rng(SPLIT_STREAM).permutation(n) if TRAIN_LIMIT < n else np.arange(n)"]
    if cfg.train_limit:
        lines.append("train = train[:TRAIN_LIMIT]")
    lines.append('splits = {"train": (scale(x_train[train]), y_train[train]), "test": (scale(x_test), y_test)}')
    if cfg.val_split:
        lines.append('splits["val"] = (scale(x_train[val]), y_train[val])')
    lines.append("return splits")
    body = "\n".join("    " + line for line in lines)
    return ('def split(x_train, y_train, x_test, y_test) -> dict:\n'
            '    """The splits the training uses, as float32 inputs and int64 labels, drawn with the split stream."""\n'
            + body)


INIT_CODE = {
    "notebook": ("W and b drawn from a standard normal, as the NumPy notebook's FCLayer",
                 "return rng.standard_normal((n_in, n_out)), rng.standard_normal(n_out)"),
    "small": ("W ~ N(0, 0.01^2) and b = 0, as TwoLayerNet (weight_init_std = 0.01)",
              "return 0.01 * rng.standard_normal((n_in, n_out)), np.zeros(n_out)"),
    "xavier": ("Glorot/Xavier uniform: W ~ U(+-sqrt(6 / (n_in + n_out))), b = 0 (Keras' default)",
               "limit = np.sqrt(6 / (n_in + n_out))\n"
               "    return rng.uniform(-limit, limit, (n_in, n_out)), np.zeros(n_out)"),
    "he": ("He (Kaiming) normal for ReLU: W ~ N(0, 2 / n_in), b = 0",
           "return np.sqrt(2 / n_in) * rng.standard_normal((n_in, n_out)), np.zeros(n_out)"),
    "pytorch": ("PyTorch's nn.Linear default: W and b ~ U(+-1/sqrt(n_in))",
                "bound = 1 / np.sqrt(n_in)\n"
                "    return rng.uniform(-bound, bound, (n_in, n_out)), rng.uniform(-bound, bound, n_out)"),
}


def _init(cfg: TrainConfig) -> str:
    doc, body = INIT_CODE[cfg.init]
    return f'''
        def init_layer(n_in: int, n_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            """{doc}; drawn in float64."""
            {body}


        def initial_weights(n_features: int) -> list[tuple[np.ndarray, np.ndarray]]:
            """(W (n_in, n_out), b (n_out,)) per layer, drawn in float64 from the seeded stream, then made float32."""
            rng = np.random.default_rng(INIT_STREAM)
            sizes = [n_features, *HIDDEN_SIZES, N_CLASSES]
            layers = []
            for n_in, n_out in zip(sizes[:-1], sizes[1:]):
                W, b = init_layer(n_in, n_out, rng)
                layers.append((W.astype(np.float32), b.astype(np.float32)))
            return layers
    '''.replace("\n    return", "\n            return")


MAIN_ARGS = '''
    def parse_args(argv=None) -> argparse.Namespace:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--data", type=Path, default=Path("data") / DATASET,
                            help="folder with the four IDX files (default: %(default)s)")
        return parser.parse_args(argv)


    def epoch_line(r: dict) -> str:
        """The notebook-style line for one epoch."""
        val = f", val acc {r['val_acc']:.2%}" if "val_acc" in r else ""
        return (f"Epoch {r['epoch']}: train loss {r['train_loss']:.4f}, train acc {r['train_acc']:.2%}, "
                f"test loss {r['test_loss']:.4f}, test acc {r['test_acc']:.2%}{val} ({r['seconds']:.2f}s)")
'''


# ---------------------------------------------------------------- the NumPy script

NP_ACTIVATIONS = {
    "sigmoid": '''
        class Sigmoid:
            """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y)."""

            def forward(self, x, train=True):
                with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x < -88: y = 0, the right limit
                    self.y = 1 / (1 + np.exp(-x))
                return self.y

            def backward(self, grad_out):
                return grad_out * self.y * (1 - self.y)
    ''',
    "tanh": '''
        class Tanh:
            """y = tanh(x); dy/dx = 1 - y^2."""

            def forward(self, x, train=True):
                self.y = np.tanh(x)
                return self.y

            def backward(self, grad_out):
                return grad_out * (1 - self.y ** 2)
    ''',
    "relu": '''
        class ReLU:
            """y = max(x, 0); the gradient passes where x > 0."""

            def forward(self, x, train=True):
                self.y = np.maximum(x, 0)
                return self.y

            def backward(self, grad_out):
                return grad_out * (self.y > 0)
    ''',
    "leaky_relu": '''
        class LeakyReLU:
            """y = x where x > 0, else 0.01 x; the gradient is multiplied by 1 where x > 0, else by 0.01."""

            def forward(self, x, train=True):
                self.y = np.where(x > 0, x, 0.01 * x)
                return self.y

            def backward(self, grad_out):
                return grad_out * np.where(self.y > 0, 1, 0.01).astype(grad_out.dtype)
    ''',
}
NP_ACTIVATION_CLASS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU", "leaky_relu": "LeakyReLU"}

NP_LINEAR = '''
    class Linear:
        """y = x @ W + b, W of shape (n_in, n_out); backward fills grads and returns dL/dx."""

        def __init__(self, W: np.ndarray, b: np.ndarray):
            self.params = {"W": W, "b": b}
            self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}

        def forward(self, x, train=True):
            """x: (batch, n_in) -> (batch, n_out)."""
            self.x = x
            return x @ self.params["W"] + self.params["b"]

        def backward(self, grad_out):
            """dL/dy (batch, n_out) -> dL/dx (batch, n_in); dL/dW = x^T dL/dy, dL/db = its column sums."""
            self.grads["W"][...] = self.x.T @ grad_out
            self.grads["b"][...] = grad_out.sum(axis=0)
            return grad_out @ self.params["W"].T
'''

NP_DROPOUT = '''
    class Dropout:
        """Inverted dropout: while training, zero each unit with probability p and scale the rest by 1 / (1 - p)."""

        def __init__(self, p: float, rng: np.random.Generator):
            self.p, self.rng, self.mask = p, rng, None

        def forward(self, x, train=True):
            if not train:
                self.mask = None
                return x
            keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
            self.mask = keep.astype(x.dtype) / (1 - self.p)
            return x * self.mask

        def backward(self, grad_out):
            return grad_out if self.mask is None else grad_out * self.mask
'''

NP_ONE_HOT = '''
    def one_hot(t: np.ndarray, k: int, dtype) -> np.ndarray:
        """(batch,) labels -> (batch, k) rows with a 1 at each label."""
        T = np.zeros((len(t), k), dtype=dtype)
        T[np.arange(len(t)), t] = 1
        return T
'''

NP_SIGMOID_FN = '''
    def sigmoid(z):
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-z))
'''

NP_SOFTMAX_FN = '''
    def softmax(z):
        """Row-wise softmax; subtracting the row max first means exp never overflows."""
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
'''

NP_LOSSES = {
    ("softmax", "cross_entropy"): '''
        class Loss:
            """Softmax + cross-entropy, fused: L = mean over the batch of logsumexp(z) - z[t]; dL/dz = (p - T) / N."""

            def forward(self, z, t):
                shifted = z - z.max(axis=1, keepdims=True)
                log_sum = np.log(np.exp(shifted).sum(axis=1))
                self.p, self.t = softmax(z), t
                return float(np.mean(log_sum - shifted[np.arange(len(t)), t]))

            def backward(self):
                return (self.p - one_hot(self.t, self.p.shape[1], self.p.dtype)) / len(self.t)
    ''',
    ("sigmoid", "cross_entropy"): '''
        class Loss:
            """Sigmoid + per-class binary cross-entropy, fused: dL/dz = (y - T) / N.

            Computed from the logits as max(z, 0) - z T + log(1 + exp(-|z|)), which never takes log(0).
            """

            def forward(self, z, t):
                self.T = one_hot(t, z.shape[1], z.dtype)
                self.y = sigmoid(z)
                per_unit = np.maximum(z, 0) - z * self.T + np.log1p(np.exp(-np.abs(z)))
                return float(per_unit.sum() / len(t))

            def backward(self):
                return (self.y - self.T) / len(self.T)
    ''',
}
NP_MSE = '''
    class Loss:
        """Squared error summed over the outputs, averaged over the batch: L = (1/N) sum (y - T)^2, y = {y_doc}.

        (The NumPy notebook printed the mean over all N*10 entries: this loss is 10 times its figure.)
        """

        def forward(self, z, t):
            self.y = {y_code}
            self.diff = self.y - one_hot(t, z.shape[1], z.dtype)
            return float(np.sum(self.diff ** 2) / len(t))

        def backward(self):
            dy = 2 * self.diff / len(self.diff)  # dL/dy
            {back_code}
'''
NP_MSE_OUTPUT = {
    "sigmoid": ("sigmoid(z)", "sigmoid(z)", "return dy * self.y * (1 - self.y)  # dL/dz through the sigmoid"),
    "softmax": ("softmax(z)", "softmax(z)",
                "return self.y * (dy - np.sum(dy * self.y, axis=1, keepdims=True))  # through softmax's Jacobian"),
    "linear": ("z", "z.copy()", "return dy"),
}

NP_OPTIMIZERS = {
    "sgd": ('''
        def update(p, g, state, step):
            """SGD: p <- p - lr g."""
            p -= LEARNING_RATE * g
    '''),
    "momentum": ('''
        def update(p, g, state, step):
            """Heavy ball, as torch.optim.SGD(momentum): v <- mu v + g; p <- p - lr v (v starts at 0)."""
            v = state.setdefault("v", np.zeros_like(p))
            v *= MOMENTUM
            v += g
            p -= LEARNING_RATE * v
    '''),
    "adam": ('''
        def update(p, g, state, step):
            """Adam, as torch.optim.Adam: moment estimates m and v, bias-corrected by the step number."""
            b1, b2 = BETAS
            m = state.setdefault("m", np.zeros_like(p))
            v = state.setdefault("v", np.zeros_like(p))
            m[...] = b1 * m + (1 - b1) * g
            v[...] = b2 * v + (1 - b2) * g ** 2
            m_hat = m / (1 - b1 ** step)
            v_hat = v / (1 - b2 ** step)
            p -= LEARNING_RATE * m_hat / (np.sqrt(v_hat) + 1e-8)
    '''),
}


def _numpy_parts(cfg: TrainConfig) -> list[str]:
    parts = [NP_LINEAR]
    if cfg.hidden_sizes:
        parts.append(NP_ACTIVATIONS[cfg.activation])
    if cfg.dropout:
        parts.append(NP_DROPOUT)
    parts.append(NP_ONE_HOT)
    if cfg.output == "sigmoid":
        parts.append(NP_SIGMOID_FN)
    if cfg.output == "softmax":
        parts.append(NP_SOFTMAX_FN)
    if cfg.loss == "mse":
        y_doc, y_code, back = NP_MSE_OUTPUT[cfg.output]
        parts.append(NP_MSE.replace("{y_doc}", y_doc).replace("{y_code}", y_code).replace("{back_code}", back))
    else:
        parts.append(NP_LOSSES[(cfg.output, cfg.loss)])
    parts.append(NP_OPTIMIZERS[cfg.optimizer])
    l2 = ("\n                            if p.ndim >= 2:  # L2 weight decay on the weights"
          "\n                                g = g + L2 * p" if cfg.l2 else "")
    hidden = ""
    if cfg.hidden_sizes:
        hidden = (f"\n                if i < len(weights) - 1:  # a hidden layer"
                  f"\n                    layers.append({NP_ACTIVATION_CLASS[cfg.activation]}())")
        if cfg.dropout:
            hidden += "\n                    layers.append(Dropout(DROPOUT, dropout_rng))"
    dropout_rng = ("\n            dropout_rng = np.random.default_rng(DROPOUT_STREAM)"
                   if cfg.dropout and cfg.hidden_sizes else "")
    build = "for i, (W, b) in enumerate(weights):" if cfg.hidden_sizes else "for W, b in weights:"
    val_eval = ('\n                    r["val_loss"], r["val_acc"] = evaluate(layers, loss, *splits["val"])'
                if cfg.val_split else "")
    parts.append('''
        def forward(layers, x, train):
            """x: (batch, n_in) -> logits (batch, N_CLASSES), before the output activation."""
            for layer in layers:
                x = layer.forward(x, train)
            return x


        def evaluate(layers, loss, x, t) -> tuple[float, float]:
            """Mean loss and accuracy over a whole split, dropout off, in chunks of EVAL_CHUNK rows."""
            total, correct = 0.0, 0
            for i in range(0, len(x), EVAL_CHUNK):
                z = forward(layers, x[i:i + EVAL_CHUNK], train=False)
                tb = t[i:i + EVAL_CHUNK]
                correct += int(np.count_nonzero(z.argmax(axis=1) == tb))
                total += loss.forward(z, tb) * len(tb)
            return total / len(x), correct / len(x)
    ''')
    parts.append(MAIN_ARGS)
    parts.append(f'''
        def main(argv=None) -> list[dict]:
            """Load, build, train; print a line per epoch and return them."""
            args = parse_args(argv)
            splits = split(*load_idx_folder(args.data))
            x_train, y_train = splits["train"]
            weights = initial_weights(x_train.shape[1]){dropout_rng}
            layers = []
            {build}
                layers.append(Linear(W, b)){hidden}
            loss = Loss()
            params = [(lin.params[k], lin.grads[k]) for lin in layers if isinstance(lin, Linear) for k in ("W", "b")]
            states = [{{}} for _ in params]
            shuffle = np.random.default_rng(SHUFFLE_STREAM)
            history, step = [], 0
            for epoch in range(1, EPOCHS + 1):
                started = time.perf_counter()
                order = shuffle.permutation(len(y_train))  # this epoch's batch order
                with np.errstate(over="ignore", invalid="ignore"):
                    for start in range(0, len(order), BATCH_SIZE):
                        idx = order[start:start + BATCH_SIZE]
                        z = forward(layers, x_train[idx], train=True)  # logits (batch, N_CLASSES)
                        batch_loss = loss.forward(z, y_train[idx])
                        if not np.isfinite(batch_loss):
                            raise SystemExit(f"Training diverged in epoch {{epoch}}: lower the learning rate.")
                        grad = loss.backward()
                        for layer in reversed(layers):  # back-propagation: every layer's grads now hold dL/dθ
                            grad = layer.backward(grad)
                        step += 1
                        for (p, g), state in zip(params, states):{l2}
                            update(p, g, state, step)
                    r = {{"epoch": epoch}}
                    r["train_loss"], r["train_acc"] = evaluate(layers, loss, x_train, y_train)
                    r["test_loss"], r["test_acc"] = evaluate(layers, loss, *splits["test"]){val_eval}
                r["seconds"] = time.perf_counter() - started
                history.append(r)
                print(epoch_line(r), flush=True)
            return history


        if __name__ == "__main__":
            main()
    ''')
    return parts


# ---------------------------------------------------------------- the PyTorch script

TORCH_ACTIVATIONS = {"sigmoid": "torch.sigmoid(h)", "tanh": "torch.tanh(h)", "relu": "F.relu(h)",
                     "leaky_relu": "F.leaky_relu(h, 0.01)"}
TORCH_LOSSES = {
    ("softmax", "cross_entropy"): ("softmax + cross-entropy", "F.cross_entropy(z, t, reduction=reduction)"),
    ("sigmoid", "cross_entropy"): (
        "sigmoid + binary cross-entropy per class, summed",
        "per_row = F.binary_cross_entropy_with_logits(z, one_hot(t, z), reduction=\"none\").sum(1)"),
    ("sigmoid", "mse"): ("sigmoid outputs, squared error summed over the classes",
                         "per_row = ((torch.sigmoid(z) - one_hot(t, z)) ** 2).sum(1)"),
    ("softmax", "mse"): ("softmax outputs, squared error summed over the classes",
                         "per_row = ((torch.softmax(z, 1) - one_hot(t, z)) ** 2).sum(1)"),
    ("linear", "mse"): ("linear outputs, squared error summed over the classes",
                        "per_row = ((z - one_hot(t, z)) ** 2).sum(1)"),
}


def _torch_parts(cfg: TrainConfig) -> list[str]:
    doc, code = TORCH_LOSSES[(cfg.output, cfg.loss)]
    if code.startswith("per_row"):
        loss_body = f'{code}\n            return per_row.mean() if reduction == "mean" else per_row.sum()'
        one_hot = '''
            def one_hot(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
                return F.one_hot(t, z.shape[1]).to(z.dtype)
        '''
    else:
        loss_body, one_hot = f"return {code}", ""
    act = ""
    if cfg.hidden_sizes:
        act = f"\n                if i < last:\n                    h = {TORCH_ACTIVATIONS[cfg.activation]}"
        if cfg.dropout:
            act += ("\n                    if train:  # inverted dropout"
                    "\n                        keep = torch.rand(h.shape, generator=generator, device=h.device)"
                    " >= DROPOUT\n                        h = h * keep / (1 - DROPOUT)")
    loop = "h = x\n            for W, b in zip(weights, biases):"
    if cfg.hidden_sizes:
        loop = ("last = len(weights) - 1\n            h = x"
                "\n            for i, (W, b) in enumerate(zip(weights, biases)):")
    if cfg.optimizer == "adam":
        opt = "torch.optim.Adam(groups, lr=LEARNING_RATE, betas=BETAS)"
    elif cfg.optimizer == "momentum":
        opt = "torch.optim.SGD(groups, lr=LEARNING_RATE, momentum=MOMENTUM)"
    else:
        opt = "torch.optim.SGD(groups, lr=LEARNING_RATE)"
    l2 = "L2" if cfg.l2 else "0.0"
    generator = ("\n            generator = torch.Generator(device=device)  # dropout masks, as MLP Lab's torch backend"
                 "\n            generator.manual_seed(int(DROPOUT_STREAM.generate_state(1)[0]))" if cfg.dropout else "")
    gen_arg = ", generator" if cfg.dropout else ""
    gen_param = ", generator=None" if cfg.dropout else ""
    val_eval = ('\n                r["val_loss"], r["val_acc"] = evaluate(weights, biases, *data["val"])'
                if cfg.val_split else "")
    return [one_hot, f'''
        def loss_fn(z: torch.Tensor, t: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
            """{doc}; the batch mean (or the sum, to evaluate in chunks)."""
            {loss_body}


        def forward(weights, biases, x: torch.Tensor, train: bool{gen_param}) -> torch.Tensor:
            """x: (batch, n_in) -> logits (batch, 10)."""
            {loop}
                h = torch.addmm(b, h, W)  # h @ W + b{act}
            return h


        @torch.no_grad()
        def evaluate(weights, biases, x: torch.Tensor, t: torch.Tensor) -> tuple[float, float]:
            """Mean loss and accuracy over a whole split, dropout off."""
            total, correct = 0.0, 0
            for i in range(0, len(x), EVAL_CHUNK):
                z = forward(weights, biases, x[i:i + EVAL_CHUNK], False)
                tb = t[i:i + EVAL_CHUNK]
                total += loss_fn(z, tb, reduction="sum").double().item()
                correct += int((z.argmax(1) == tb).sum())
            return total / len(x), correct / len(x)


        def pick_device(name: str) -> torch.device:
            if name == "auto":
                if torch.cuda.is_available():
                    return torch.device("cuda")
                if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                    return torch.device("mps")
                return torch.device("cpu")
            return torch.device(name)
    ''', MAIN_ARGS.replace('help="folder with the four IDX files (default: %(default)s)")',
                           'help="folder with the four IDX files (default: %(default)s)")\n'
                           '        parser.add_argument("--device", default=DEVICE, help="auto, cpu, cuda or mps")'),
        f'''
        def main(argv=None) -> list[dict]:
            """Load, build, train; print a line per epoch and return them."""
            args = parse_args(argv)
            device = pick_device(args.device)
            data = {{name: (torch.tensor(x, device=device), torch.tensor(t, device=device))
                    for name, (x, t) in split(*load_idx_folder(args.data)).items()}}
            x_train, y_train = data["train"]
            initial = initial_weights(x_train.shape[1])
            weights = [torch.tensor(W, device=device, requires_grad=True) for W, _ in initial]
            biases = [torch.tensor(b, device=device, requires_grad=True) for _, b in initial]
            # L2 weight decay on the weights only
            groups = [{{"params": weights, "weight_decay": {l2}}}, {{"params": biases, "weight_decay": 0.0}}]
            optimizer = {opt}{generator}
            shuffle = np.random.default_rng(SHUFFLE_STREAM)
            history = []
            for epoch in range(1, EPOCHS + 1):
                started = time.perf_counter()
                order = torch.from_numpy(shuffle.permutation(len(y_train))).to(device)  # this epoch's batch order
                for start in range(0, len(order), BATCH_SIZE):
                    idx = order[start:start + BATCH_SIZE]
                    loss = loss_fn(forward(weights, biases, x_train[idx], True{gen_arg}), y_train[idx])
                    optimizer.zero_grad()
                    loss.backward()  # autograd: every weight's and bias's .grad now holds dL/dθ
                    optimizer.step()
                r = {{"epoch": epoch}}
                r["train_loss"], r["train_acc"] = evaluate(weights, biases, x_train, y_train)
                r["test_loss"], r["test_acc"] = evaluate(weights, biases, *data["test"]){val_eval}
                if not np.isfinite(r["train_loss"]):
                    raise SystemExit(f"Training diverged in epoch {{epoch}}: lower the learning rate.")
                r["seconds"] = time.perf_counter() - started
                history.append(r)
                print(epoch_line(r), flush=True)
            return history


        if __name__ == "__main__":
            main()
    ''']


# ---------------------------------------------------------------- the command line


def register(subparsers) -> None:
    """`python -m engine export --to numpy|torch`: the script on standard output."""
    from engine.cli import add_config_arguments

    p = subparsers.add_parser("export", help="write the configured run as a standalone NumPy or PyTorch script",
                              description="Prints the script; redirect it to a file: ... --to numpy > run.py")
    add_config_arguments(p)
    p.add_argument("--to", choices=list(TARGETS), default="numpy", help="NumPy only, or PyTorch")
    p.set_defaults(run=run_cli)


def run_cli(args) -> int:
    from engine.cli import config_from_args, fail

    try:
        source = export_script(config_from_args(args), args.to)
    except ValueError as err:
        return fail(str(err))
    sys.stdout.write(source)
    return 0
