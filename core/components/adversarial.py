"""Adversarial objectives (hinge, least squares) and feature matching for GAN codecs.

A discriminator returns ``(logits, features)``: ``logits`` a list of score tensors
``(batch, ...)`` (one per scale/period/band), ``features`` a list of feature maps
``(batch, channels, frames)``. The functions here take those lists flattened over every
discriminator in use. Each term is a mean over elements, averaged over the list, so its
scale does not grow with the number of discriminators, and it is linear in per-example
means (the average over ranks and micro-batches equals the mean over the global batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def _average(terms: Sequence[Tensor]) -> Tensor:
    if not terms:
        raise ValueError("an adversarial loss needs at least one logits tensor")
    return torch.stack([t.float() for t in terms]).mean()


def hinge_discriminator_loss(real: Sequence[Tensor], fake: Sequence[Tensor]) -> Tensor:
    """``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``, averaged over logits."""
    return _average([F.relu(1 - r.float()).mean() + F.relu(1 + f.float()).mean()
                     for r, f in zip(real, fake, strict=True)])


def hinge_generator_loss(fake: Sequence[Tensor]) -> Tensor:
    """``-mean(D(fake))``, averaged over logits."""
    return _average([-f.float().mean() for f in fake])


def least_squares_discriminator_loss(real: Sequence[Tensor], fake: Sequence[Tensor]) -> Tensor:
    """``mean((D(real) - 1)^2) + mean(D(fake)^2)`` (LSGAN), averaged over logits."""
    return _average([(r.float() - 1).pow(2).mean() + f.float().pow(2).mean()
                     for r, f in zip(real, fake, strict=True)])


def least_squares_generator_loss(fake: Sequence[Tensor]) -> Tensor:
    """``mean((D(fake) - 1)^2)`` (LSGAN), averaged over logits."""
    return _average([(f.float() - 1).pow(2).mean() for f in fake])


def feature_matching_loss(real: Sequence[Tensor], fake: Sequence[Tensor]) -> Tensor:
    """Mean absolute difference between matching feature maps, averaged over maps.

    ``real`` maps are detached: feature matching trains the generator only.
    """
    return _average([(f.float() - r.detach().float()).abs().mean()
                     for r, f in zip(real, fake, strict=True)])


@dataclass(frozen=True)
class AdversarialObjective:
    """A named pair: ``discriminator(real_logits, fake_logits)`` and ``generator(fake_logits)``."""

    name: str
    discriminator: Callable[[Sequence[Tensor], Sequence[Tensor]], Tensor]
    generator: Callable[[Sequence[Tensor]], Tensor]


OBJECTIVES: dict[str, AdversarialObjective] = {
    "hinge": AdversarialObjective("hinge", hinge_discriminator_loss, hinge_generator_loss),
    "least_squares": AdversarialObjective("least_squares", least_squares_discriminator_loss,
                                          least_squares_generator_loss),
}
