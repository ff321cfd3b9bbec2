"""Backends share one interface: `Backend.train(cfg, data, model=..., should_stop=..., on_batch=...)`.

`textbook` and `numpy` are engine/backends/numpy_backend.py; `torch` is torch_backend.py, imported when asked for.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

from engine.backends.numpy_backend import numpy_train, textbook_train

TORCH_INSTALL_HINT = ("The torch backend needs PyTorch, which is not installed. "
                      "Install it with `pip install torch==2.13.0` (CPU build), or use the numpy backend.")


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def prewarm_torch(device: str = "auto") -> threading.Thread:
    """Import PyTorch and start `device` (a GPU's context, cuBLAS) on a daemon thread, before a run needs them.

    A failure (no PyTorch, no such device) is left for the run itself to report, with its own message.
    """
    def warm() -> None:
        try:
            from engine.backends.torch_backend import prewarm

            prewarm(device)
        except Exception:  # noqa: BLE001 - see above
            pass

    thread = threading.Thread(target=warm, daemon=True, name="mlp-lab-torch-warmup")
    thread.start()
    return thread


def get_backend(name: str):
    """'numpy', 'textbook' or 'torch' -> an object with a `train` generator function."""
    if name == "numpy":
        return SimpleNamespace(name="numpy", train=numpy_train)
    if name == "textbook":
        return SimpleNamespace(name="textbook", train=textbook_train)
    if name == "torch":
        if not torch_available():
            raise ImportError(TORCH_INSTALL_HINT)
        from engine.backends import torch_backend

        return SimpleNamespace(name="torch", train=torch_backend.torch_train)
    raise ValueError(f"Unknown backend {name!r}; choose numpy, textbook or torch")
