"""Adversarial objectives (hinge, least squares) and feature matching for GAN codecs.

A discriminator returns ``(logits, features)``: ``logits`` a list of score tensors
``(batch, ...)`` (one per scale/period/band), ``features`` a list of feature maps
``(batch, channels, frames)``. The functions here take those lists flattened over every
discriminator in use. Each term is a mean over elements, averaged over the list, so its
scale does not grow with the number of discriminators, and it is linear in per-example
means (the average over ranks and micro-batches equals the mean over the global batch).

An :class:`AdversarialObjective` pairs a discriminator and a generator loss and may add a
real/fake *repulsion* term to the discriminator loss (:func:`repulsion_loss`) against
discriminator collapse; :func:`get_objective` builds one by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

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


def feature_matching_loss(real: Sequence[Tensor], fake: Sequence[Tensor], *,
                          relative: bool = False, eps: float = 1e-8) -> Tensor:
    """Mean absolute difference between matching feature maps, averaged over maps.

    Each map (any shape) contributes its own element mean, so layers weigh equally whatever
    their size. ``relative=True`` divides each layer's term by ``mean(|real|) + eps``
    (EnCodec's normalisation: layers with large activations do not dominate). ``real`` maps
    are detached: feature matching trains the generator only.
    """
    terms = []
    for r, f in zip(real, fake, strict=True):
        r = r.detach().float()
        term = (f.float() - r).abs().mean()
        terms.append(term / (r.abs().mean() + eps) if relative else term)
    return _average(terms)


def repulsion_loss(real: Sequence[Tensor], fake: Sequence[Tensor], margin: float = 1.0) -> Tensor:
    """``relu(margin - (mean(D(real)) - mean(D(fake))))``, averaged over logits tensors.

    Zero while each discriminator output ranks real above fake by at least ``margin`` on
    average over the (micro-)batch; grows linearly as the two means approach or cross. Added
    to the discriminator loss it pushes a collapsed discriminator (real and fake scores
    equal) apart again; it does not change the generator loss. Unlike the other terms it is
    not linear in per-example means (the margin applies to each rank's micro-batch means).
    """
    return _average([F.relu(margin - (r.float().mean() - f.float().mean()))
                     for r, f in zip(real, fake, strict=True)])


@dataclass(frozen=True)
class AdversarialObjective:
    """A named GAN objective over flattened logits lists.

    ``discriminator(real_logits, fake_logits)`` is ``discriminator_fn(real, fake) +
    repulsion_weight * repulsion_loss(real, fake, repulsion_margin)`` (the repulsion term
    is skipped when its weight is 0); ``generator(fake_logits)`` is ``generator_fn(fake)``.
    """

    name: str
    discriminator_fn: Callable[[Sequence[Tensor], Sequence[Tensor]], Tensor]
    generator_fn: Callable[[Sequence[Tensor]], Tensor]
    repulsion_weight: float = 0.0
    repulsion_margin: float = 1.0

    def __post_init__(self) -> None:
        if self.repulsion_weight < 0 or self.repulsion_margin <= 0:
            raise ValueError(f"repulsion_weight must be >= 0 and repulsion_margin > 0; got "
                             f"{self.repulsion_weight} and {self.repulsion_margin}")

    def discriminator_terms(self, real: Sequence[Tensor], fake: Sequence[Tensor]
                            ) -> tuple[Tensor, dict[str, Tensor]]:
        """The discriminator loss and its detached parts ``{"adversarial", "repulsion"}``
        (``"repulsion"`` only when its weight is > 0)."""
        adv = self.discriminator_fn(real, fake)
        parts = {"adversarial": adv.detach()}
        if self.repulsion_weight > 0:
            rep = repulsion_loss(real, fake, self.repulsion_margin)
            parts["repulsion"] = rep.detach()
            adv = adv + self.repulsion_weight * rep
        return adv, parts

    def discriminator(self, real: Sequence[Tensor], fake: Sequence[Tensor]) -> Tensor:
        return self.discriminator_terms(real, fake)[0]

    def generator(self, fake: Sequence[Tensor]) -> Tensor:
        return self.generator_fn(fake)

    def with_repulsion(self, weight: float, margin: float = 1.0) -> AdversarialObjective:
        """This objective with a repulsion term of ``weight`` and ``margin``."""
        return replace(self, repulsion_weight=float(weight), repulsion_margin=float(margin))


OBJECTIVES: dict[str, AdversarialObjective] = {
    "hinge": AdversarialObjective("hinge", hinge_discriminator_loss, hinge_generator_loss),
    "least_squares": AdversarialObjective("least_squares", least_squares_discriminator_loss,
                                          least_squares_generator_loss),
}


def get_objective(name: str, repulsion_weight: float = 0.0,
                  repulsion_margin: float = 1.0) -> AdversarialObjective:
    """``OBJECTIVES[name]`` with the given repulsion term (weight 0: none)."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown adversarial objective '{name}'; choose one of "
                         f"{', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name].with_repulsion(repulsion_weight, repulsion_margin)
