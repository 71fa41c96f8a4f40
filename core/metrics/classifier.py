"""Class accuracy of generated clips: a nearest-class-mean classifier fitted on the embeddings
of real clips with their labels, scoring generated clips against the labels they were asked
for (what a class-conditioned generator is validated with).

Embeddings are standardised with the real clips' per-dimension mean and deviation before the
class means are taken, so no single loud band decides the nearest class.
"""

from __future__ import annotations

import torch
from torch import Tensor


class NearestClassMean:
    """``fit(embeddings (n, dim), labels (n,))`` then ``predict(embeddings (m, dim)) ->
    labels (m,)``: the label of the nearest standardised class mean (Euclidean)."""

    def fit(self, embeddings: Tensor, labels: Tensor) -> NearestClassMean:
        x = embeddings.double()
        if x.ndim != 2 or labels.shape != (x.shape[0],) or x.shape[0] == 0:
            raise ValueError(f"need embeddings (n >= 1, dim) and labels (n,), got "
                             f"{tuple(x.shape)} and {tuple(labels.shape)}")
        self.mean = x.mean(0)
        self.scale = x.std(0, unbiased=False).clamp_min(1e-8)
        z = (x - self.mean) / self.scale
        self.classes = torch.unique(labels.long())
        self.centroids = torch.stack([z[labels.long() == c].mean(0) for c in self.classes])
        return self

    def predict(self, embeddings: Tensor) -> Tensor:
        z = (embeddings.double() - self.mean) / self.scale
        return self.classes[torch.cdist(z, self.centroids).argmin(-1)]


def class_accuracy(real: Tensor, labels: Tensor, generated: Tensor, requested: Tensor) -> float:
    """Share of ``generated`` clip embeddings ``(m, dim)`` that a :class:`NearestClassMean`
    fitted on ``real`` ``(n, dim)`` with ``labels`` ``(n,)`` assigns their ``requested``
    label ``(m,)``. Examples labelled -1 (no label) are left out of both sides."""
    known, asked = labels >= 0, requested >= 0
    if not bool(known.any()) or not bool(asked.any()):
        raise ValueError("class accuracy needs labelled real clips and generated clips "
                         "asked for a class")
    model = NearestClassMean().fit(real[known], labels[known])
    hits = model.predict(generated[asked]) == requested[asked].long()
    return float(hits.double().mean())
