import sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch
t00=time.perf_counter()
from engine import PRESETS, load_dataset, build_model
from engine.train import make_splits
from engine.backends.torch_backend import TorchMLP, TrainStep
ds = load_dataset("mnist")
def lap(msg, t=[time.perf_counter()]):
    torch.cuda.synchronize(); now=time.perf_counter(); print(f"{msg:30} {now-t[0]:.3f}"); t[0]=now
torch.zeros(1, device="cuda"); lap("cuda init")
cfg = PRESETS["notebook-mse"].config.replace(backend="torch", device="cuda")
sp = make_splits(cfg, ds); lap("splits")
dev = torch.device("cuda")
X = torch.tensor(sp.x_train, device=dev); Y = torch.tensor(sp.y_train, device=dev); lap("upload")
net = TorchMLP(cfg, build_model(cfg, 784, 10), dev); lap("net")
a = torch.randn(128, 784, device=dev) @ torch.randn(784, 64, device=dev); lap("first matmul")
step = TrainStep(net, cfg, X, Y, use_graph=False); lap("eager TrainStep")
step(torch.arange(128, device=dev)); lap("first eager step")
step(torch.arange(128, device=dev)); lap("second eager step")
step = TrainStep(net, cfg, X, Y, use_graph=True); lap("graph TrainStep (capture)")
step(torch.arange(128, device=dev)); lap("first replay")
