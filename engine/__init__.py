"""MLP Lab's engine: a from-scratch NumPy multilayer perceptron (and a PyTorch twin). No UI imports."""

from engine.config import PRESETS, Preset, TrainConfig, parse_hidden_sizes
from engine.data import DATASETS, Dataset, load_dataset
from engine.model import MLP, build_model, load_model
from engine.train import EpochResult, TrainingDiverged, train

__all__ = [
    "DATASETS", "EpochResult", "MLP", "PRESETS", "Dataset", "Preset", "TrainConfig", "TrainingDiverged",
    "build_model", "load_dataset", "load_model", "parse_hidden_sizes", "train",
]
