"""The digit classifier whose 64-d penultimate layer is the feature space of FD_digits
(``ersde_theory.evaluation.image_metrics``; trained by :func:`ersde_theory.models.train.train_feature_net`)."""

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
