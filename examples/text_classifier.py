"""An embedding + transformer-encoder text classifier that declares no inputs: exportkit infers them.

exportkit export 'examples/text_classifier.py:TextClassifier(vocab=5000, dim=64)'
"""

import torch
from torch import nn


class TextClassifier(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 32, classes: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, 4, 2 * dim, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens)).mean(1))
