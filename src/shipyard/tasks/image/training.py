"""Training the three candidates under one time budget, and choosing one with statistics.

(a) ``efficientnet_lite0``: transfer learning. The ImageNet backbone's features are computed
once; a linear head is fitted on them (frozen features), then the last blocks are fine-tuned
with the head on activations of the training images and of augmented copies (small rotations,
shifts, brightness and contrast), with batch-norm statistics frozen. The fine-tuned network
is kept only when it scores better on the validation images than the frozen one.
(b) ``small_cnn``: three convolution blocks trained from scratch, with augmentation.
(c) ``linear_pixels``: logistic regression on the pixels.

Every candidate is scored on the same validation images; each leaderboard row has the
validation metric with a bootstrap interval, and the best is compared with every other by a
paired bootstrap over the validation images (one-sided p-value). A candidate that does not
finish inside its share of the budget stops early and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import TrainingError

__all__ = ["Trained", "select", "train_candidate"]

Report = Callable[[str], None]
COMPLEXITY = {"linear_pixels": 1, "small_cnn": 2, "efficientnet_lite0": 3}


@dataclass
class Trained:
    """One trained candidate: the network, its validation probabilities and what it cost."""

    name: str
    network: Any
    size: int
    validation: npt.NDArray[np.float64]
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""


def _device(setting: str) -> Any:
    import torch

    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainingError("image.device is 'cuda' but no CUDA device is available.")
        return torch.device("cuda")
    return torch.device("cpu")


def augment(batch: Any, generator: Any) -> Any:
    """Random small rotations (up to 8 degrees), shifts (up to 8%), brightness and contrast."""
    import torch
    import torch.nn.functional as functional

    count = batch.shape[0]
    angle = (torch.rand(count, generator=generator) * 2 - 1) * (8 * np.pi / 180)
    shift = (torch.rand(count, 2, generator=generator) * 2 - 1) * 0.16
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(batch.device)
    grid = functional.affine_grid(theta, list(batch.shape), align_corners=False)
    moved = functional.grid_sample(batch, grid, padding_mode="border", align_corners=False)
    brightness = ((torch.rand(count, 1, 1, 1, generator=generator) * 2 - 1) * 0.1).to(batch)
    contrast = (1 + (torch.rand(count, 1, 1, 1, generator=generator) * 2 - 1) * 0.15).to(batch)
    mean = moved.mean(dim=(1, 2, 3), keepdim=True)
    return ((moved - mean) * contrast + mean + brightness).clamp(0.0, 1.0)


def _fit(
    parameters: list[Any],
    forward: Callable[[Any], Any],
    inputs: Any,
    labels: Any,
    epochs: int,
    settings: Any,
    seed: int,
    deadline: float,
    transform: Callable[[Any, Any], Any] | None = None,
    learning_rate: float | None = None,
) -> tuple[int, bool]:
    """Minimise the cross-entropy with Adam; return the epochs run and whether time ran out."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate or settings.learning_rate)
    count = inputs.shape[0]
    for epoch in range(epochs):
        if time.monotonic() > deadline:
            return epoch, True
        order = torch.randperm(count, generator=generator)
        for start in range(0, count, settings.batch_size):
            if start and time.monotonic() > deadline:  # mid-epoch: the share is a promise
                return epoch, True
            rows = order[start : start + settings.batch_size]
            batch = inputs[rows]
            if transform is not None:
                batch = transform(batch, generator)
            probabilities = forward(batch)
            loss = torch.nn.functional.nll_loss(
                torch.log(probabilities.clamp_min(1e-7)), labels[rows]
            )
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    return epochs, False


def _predict(forward: Callable[[Any], Any], inputs: Any) -> npt.NDArray[np.float64]:
    import torch

    parts = []
    with torch.no_grad():
        for start in range(0, inputs.shape[0], 256):
            parts.append(forward(inputs[start : start + 256]).double().cpu().numpy())
    return np.concatenate(parts)


def train_candidate(
    name: str,
    train: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]],
    validation: npt.NDArray[np.float32],
    settings: Any,
    classes: int,
    seed: int,
    deadline: float,
    report: Report,
    resize: Callable[[int], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]],
    judge: Callable[[npt.NDArray[np.float64]], float],
) -> Trained:
    """Train one candidate on ``train`` (pixels, class indices); score ``validation``.

    ``resize(side)`` returns the training and validation pixels at another side (the
    backbone's input size); ``judge(probabilities)`` scores validation outputs (higher is
    better).
    """
    import torch

    from shipyard.tasks.image.networks import LinearPixels, SmallCNN

    torch.manual_seed(seed)
    device = _device(settings.device)
    started = time.monotonic()
    pixels, labels = train
    channels = pixels.shape[1]
    y = torch.from_numpy(labels).to(device)
    if name == "efficientnet_lite0":
        return _train_transfer(
            train, settings, classes, seed, deadline, report, resize, judge, device
        )
    network: Any = (
        LinearPixels(channels, pixels.shape[2], classes)
        if name == "linear_pixels"
        else SmallCNN(channels, classes)
    ).to(device)
    x = torch.from_numpy(pixels).to(device)
    network.train()
    epochs, stopped = _fit(
        list(network.parameters()),
        lambda batch: network(batch)[0],
        x,
        y,
        settings.epochs,
        settings,
        seed,
        deadline,
        augment if settings.augment and name == "small_cnn" else None,
    )
    network.eval()
    scores = _predict(lambda batch: network(batch)[0], torch.from_numpy(validation).to(device))
    message = (
        f"stopped after {epochs} of {settings.epochs} epochs (time budget)" if stopped else ""
    )
    report(f"{name}: {epochs} epochs in {time.monotonic() - started:.1f}s")
    return Trained(
        name,
        network.cpu(),
        pixels.shape[2],
        scores,
        time.monotonic() - started,
        {"epochs": epochs, "learning_rate": settings.learning_rate},
        message,
    )


def _train_transfer(
    train: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]],
    settings: Any,
    classes: int,
    seed: int,
    deadline: float,
    report: Report,
    resize: Callable[[int], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]],
    judge: Callable[[npt.NDArray[np.float64]], float],
    device: Any,
) -> Trained:
    import torch

    from shipyard.tasks.image.networks import TransferNet, load_backbone

    started = time.monotonic()
    backbone, provenance = load_backbone()
    network = TransferNet(backbone, train[0].shape[1], classes).to(device).eval()
    train_pixels, validation_pixels = resize(settings.transfer_size)
    split = len(backbone._blocks) - settings.finetune_blocks
    x_train = torch.from_numpy(train_pixels).to(device)
    y = torch.from_numpy(train[1]).to(device)
    generator = torch.Generator().manual_seed(seed)
    frozen = _frozen_part(network, split, train_pixels.shape[1], settings.transfer_size, device)
    with torch.no_grad():
        views = [x_train]
        if settings.augment and settings.finetune_epochs:
            views.append(augment(x_train.cpu(), generator).to(device))
        activations = torch.cat([frozen(view) for view in views])
        targets = y.repeat(len(views))
        validation = frozen(torch.from_numpy(validation_pixels).to(device))
        embeddings = _batched(lambda batch: network.suffix(batch, split)[1], activations)
    report(f"efficientnet_lite0: backbone features in {time.monotonic() - started:.1f}s")
    original = len(x_train)
    head_epochs, stopped = _fit(
        list(network.head.parameters()),
        lambda batch: torch.softmax(network.head(batch), dim=1),
        embeddings[:original],
        y,
        settings.head_epochs,
        settings,
        seed,
        deadline,
    )
    frozen_scores = _predict(lambda batch: network.suffix(batch, split)[0], validation)
    frozen_state = {key: value.clone() for key, value in network.state_dict().items()}
    params: dict[str, Any] = {
        "input_size": settings.transfer_size,
        "head_epochs": head_epochs,
        "finetune_blocks": settings.finetune_blocks,
        "weights": provenance,
    }
    scores = frozen_scores
    if settings.finetune_epochs and not stopped:
        trainable = [
            *[p for block in backbone._blocks[split:] for p in block.parameters()],
            *backbone._conv_head.parameters(),
            *backbone._bn1.parameters(),
            *network.head.parameters(),
        ]
        # Batch-norm statistics stay frozen (evaluation mode): a few thousand small images
        # would move them away from ImageNet's, which the frozen layers below rely on.
        epochs, stopped = _fit(
            trainable,
            lambda batch: network.suffix(batch, split)[0],
            activations,
            targets,
            settings.finetune_epochs,
            settings,
            seed,
            deadline,
            learning_rate=settings.learning_rate / 4,
        )
        tuned_scores = _predict(lambda batch: network.suffix(batch, split)[0], validation)
        params["finetune_epochs"] = epochs
        if judge(tuned_scores) >= judge(frozen_scores):
            scores = tuned_scores
        else:  # fine-tuning overfitted: ship the frozen features and their head
            network.load_state_dict(frozen_state)
            params["finetune_kept"] = False
    message = "stopped early (time budget)" if stopped else ""
    report(f"efficientnet_lite0: trained in {time.monotonic() - started:.1f}s")
    return Trained(
        "efficientnet_lite0",
        network.cpu(),
        settings.transfer_size,
        scores,
        time.monotonic() - started,
        params,
        message,
    )


def _frozen_part(
    network: Any, blocks: int, channels: int, size: int, device: Any
) -> Callable[[Any], Any]:
    """Return a function computing the frozen blocks' activations, batch by batch.

    On the CPU the frozen part runs in ONNX Runtime, which computed these features about four
    times faster than PyTorch eager on a 2-core machine; on CUDA, PyTorch runs it.
    """
    import torch

    if device.type != "cpu":
        return lambda inputs: _batched(lambda batch: network.prefix(batch, blocks), inputs)
    from shipyard.tasks.image.export import export_onnx
    from shipyard.tasks.image.networks import FrozenPrefix
    from shipyard.tasks.image.predictor import onnx_session

    session = onnx_session(
        export_onnx(FrozenPrefix(network, blocks), channels, size, outputs=("activations",))
    )

    def run(inputs: Any) -> Any:
        pixels = inputs.cpu().numpy()
        parts = [
            session.run(None, {"pixels": pixels[start : start + 128]})[0]
            for start in range(0, len(pixels), 128)
        ]
        return torch.from_numpy(np.concatenate(parts))

    return run


def _batched(forward: Callable[[Any], Any], inputs: Any, size: int = 128) -> Any:
    import torch

    return torch.cat(
        [forward(inputs[start : start + size]) for start in range(0, len(inputs), size)]
    )


def select(
    trained: list[Trained],
    y_validation: npt.NDArray[np.int64],
    kind: str,
    metric: str,
    seed: int,
    alpha: float = 0.05,
    n_samples: int = 400,
) -> tuple[list[Any], dict[str, Any], Trained]:
    """Rank the candidates on the validation images; test the best against the others.

    Returns the leaderboard rows, the verdict and the chosen candidate (the simplest one the
    best does not significantly beat).
    """
    from shipyard.evaluation.metrics import GREATER_IS_BETTER
    from shipyard.evaluation.metrics import score as metric_score
    from shipyard.stats import bootstrap
    from shipyard.training.trainer import CandidateResult

    greater = GREATER_IS_BETTER[metric]
    n = len(y_validation)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, n) for _ in range(n_samples)]

    def score(outputs: Any, rows: Any = None) -> float:
        rows = np.arange(n) if rows is None else rows
        try:
            return float(metric_score(metric, y_validation[rows], outputs[rows]))
        except ValueError:  # a resample with one class
            return float("nan")

    rows = []
    for candidate in trained:
        value = score(candidate.validation)
        interval = bootstrap(partial(score, candidate.validation), n, n_samples=200, seed=seed)
        rows.append(
            CandidateResult(
                candidate.name,
                "ok",
                cv_scores=[value],
                cv_mean=value,
                cv_low=interval.low,
                cv_high=interval.high,
                fit_seconds=round(candidate.seconds, 2),
                params=dict(candidate.params),
                message=candidate.message,
                trials=1,
                complexity=COMPLEXITY[candidate.name],
            )
        )
    order = sorted(
        range(len(rows)), key=lambda i: -rows[i].cv_mean if greater else rows[i].cv_mean
    )
    rows = [rows[i] for i in order]
    trained = [trained[i] for i in order]
    top = trained[0]

    def p_value(other: Trained) -> float:
        differences = np.array(
            [score(top.validation, r) - score(other.validation, r) for r in draws]
        )
        differences = differences[np.isfinite(differences)]
        if not greater:
            differences = -differences
        return float((np.sum(differences <= 0) + 1) / (len(differences) + 1))

    for row, candidate in zip(rows[1:], trained[1:], strict=True):
        row.p_value_vs_best = p_value(candidate)
    tied = [0] + [i for i in range(1, len(rows)) if (rows[i].p_value_vs_best or 0) >= alpha]
    chosen_index = min(tied, key=lambda i: rows[i].complexity)
    verdict: dict[str, Any] = {
        "best_by_cv": rows[0].name,
        "chosen": rows[chosen_index].name,
        "test": "paired bootstrap over the validation images, one-sided",
        "alpha": alpha,
        "vs_runner_up": None,
        "vs_baseline": None,
    }
    parts = []
    if len(rows) > 1:
        p = rows[1].p_value_vs_best or 1.0
        verdict["vs_runner_up"] = {"other": rows[1].name, "p_value": p, "significant": p < alpha}
        parts.append(
            f"{rows[0].name} is {'' if p < alpha else 'not '}significantly better than "
            f"runner-up {rows[1].name} (p={p:.3g})"
        )
    baseline = next((row for row in rows[1:] if row.name == "linear_pixels"), None)
    if baseline is not None:
        p = baseline.p_value_vs_best or 1.0
        verdict["vs_baseline"] = {"other": baseline.name, "p_value": p, "significant": p < alpha}
        parts.append(
            f"{'' if p < alpha else 'not '}significantly better than the linear baseline "
            f"(p={p:.3g})"
        )
    if chosen_index:
        parts.append(
            f"shipping the simpler {rows[chosen_index].name}, which it does not significantly beat"
        )
    verdict["summary"] = "; ".join(parts) if parts else f"{rows[0].name} is the only candidate"
    return rows, verdict, trained[chosen_index]
