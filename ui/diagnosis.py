"""Is a run learning? One whose accuracy stays at chance must not look like a success (pure: history in, words out)."""

from __future__ import annotations

from engine import EpochResult, TrainConfig

NEAR_CHANCE = 1.5  # a test accuracy under 1.5x chance (15% for ten classes) is "learned nothing"
FLAT_LOSS = 0.02  # train loss moved by under 2% from the first epoch to the last: it stopped moving


def chance_level(n_classes: int) -> float:
    """The accuracy of guessing: one class in n."""
    return 1.0 / n_classes


def learned_nothing(history: list[EpochResult], n_classes: int) -> bool:
    """True when the last epoch's test accuracy is still near chance."""
    return bool(history) and history[-1].test_acc < NEAR_CHANCE * chance_level(n_classes)


def loss_is_flat(history: list[EpochResult]) -> bool:
    if len(history) < 2:
        return False
    first, last = history[0].train_loss, history[-1].train_loss
    return abs(first - last) <= FLAT_LOSS * max(abs(first), 1e-12)


def likely_causes(cfg: TrainConfig) -> list[str]:
    """What in this configuration most often stops an MLP from learning, and what to try instead."""
    causes = []
    if cfg.learning_rate >= 1 and not (cfg.loss == "mse" and cfg.output == "sigmoid" and cfg.optimizer == "sgd"):
        causes.append(f"The learning rate {cfg.learning_rate:g} is large for this setup: steps overshoot and the "
                      "units saturate. Try it 10 to 100 times smaller.")
    elif cfg.learning_rate >= 10:
        causes.append(f"The learning rate {cfg.learning_rate:g} is very large, even for the notebook's sigmoid "
                      "network (it uses 3). Try 3 or less.")
    if cfg.optimizer == "adam" and cfg.learning_rate > 0.01:
        causes.append("Adam usually wants a learning rate near 0.001.")
    if cfg.activation in ("relu", "leaky_relu") and cfg.hidden_sizes and cfg.init in ("notebook",):
        causes.append("ReLU units with the notebook's N(0, 1) weights start far too large and many die (output 0 "
                      "for every image). Try He initialisation.")
    if cfg.activation in ("relu", "leaky_relu") and cfg.hidden_sizes and cfg.loss == "mse" \
            and cfg.output == "sigmoid":
        causes.append("ReLU hidden units with a sigmoid output and MSE is the notebook's loss on a different "
                      "network; it often sticks. Try a softmax output with cross-entropy (e.g. the twolayernet "
                      "preset).")
    if cfg.batch_size < 8 and cfg.learning_rate > 0.1:
        causes.append(f"A batch of {cfg.batch_size} makes every step noisy; with learning rate "
                      f"{cfg.learning_rate:g} the weights jump around. Raise the batch size or lower the rate.")
    if cfg.learning_rate < 1e-4:
        causes.append(f"The learning rate {cfg.learning_rate:g} is so small the weights barely move. Try 10 to "
                      "100 times larger.")
    if not causes:
        causes.append("Try a learning rate 10 times smaller, then 10 times larger, or start from a preset.")
    return causes


def verdict(history: list[EpochResult], n_classes: int, cfg: TrainConfig) -> str | None:
    """A warning for a run that learned nothing (markdown), or None for one that learned."""
    if not learned_nothing(history, n_classes):
        return None
    acc, chance = history[-1].test_acc, chance_level(n_classes)
    flat = " and the loss has stopped moving" if loss_is_flat(history) else ""
    lines = [f"**This run learned nothing**: test accuracy {acc:.2%} is what guessing gets ({chance:.0%} "
             f"for {n_classes} classes){flat}. Likely causes:"]
    lines += [f"- {c}" for c in likely_causes(cfg)]
    return "\n".join(lines)
