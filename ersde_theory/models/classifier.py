"""The classifiers whose penultimate layers are the feature spaces of the project's image metrics
(``ersde_theory.evaluation.image_metrics``): the digit classifier of FD_digits (64-d features, trained by
:func:`ersde_theory.models.train.train_feature_net`) and the Fashion-MNIST classifier of FD_fmnist (128-d, trained by
:func:`ersde_theory.models.train.train_fmnist_classifier`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DigitFeatureNet(nn.Module):
    """conv 1→32 (8×8) → conv 32→64 stride 2 (4×4) → conv 64→64 stride 2 (2×2) → fc 256→64 (the features)
    → fc 64→10 (class logits)."""

    feature_dim = 64

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = (
            nn.Conv2d(1, 32, 3, padding=1),
            nn.Conv2d(32, 64, 3, 2, 1),
            nn.Conv2d(64, 64, 3, 2, 1),
        )
        self.fc, self.head = nn.Linear(256, self.feature_dim), nn.Linear(self.feature_dim, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.c3(F.silu(self.c2(F.silu(self.c1(x.to(torch.float32)))))))
        return F.silu(self.fc(h.flatten(1)))

    def forward(self, x):
        return self.head(self.features(x))


class FashionFeatureNet(nn.Module):
    """conv 1→32 (28×28) → conv 32→64 stride 2 (14×14) → conv 64→64 → conv 64→128 stride 2 (7×7) → conv 128→128
    stride 2 (4×4) → fc 2048→128 (the features) → fc 128→10 (class logits); SiLU, batch-free (no normalisation
    statistics), so features do not depend on the batch."""

    feature_dim = 128

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(1, 32, 3, padding=1),
                nn.Conv2d(32, 64, 3, 2, 1),
                nn.Conv2d(64, 64, 3, padding=1),
                nn.Conv2d(64, 128, 3, 2, 1),
                nn.Conv2d(128, 128, 3, 2, 1),
            ]
        )
        self.fc, self.head = nn.Linear(128 * 4 * 4, self.feature_dim), nn.Linear(self.feature_dim, 10)
        self.drop = nn.Dropout(0.3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(torch.float32)
        for conv in self.convs:
            h = F.silu(conv(h))
        return F.silu(self.fc(h.flatten(1)))

    def forward(self, x):
        return self.head(self.drop(self.features(x)))
