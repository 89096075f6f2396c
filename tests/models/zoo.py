"""Models for input inference, one per layer family; none declares its inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FlatMLP(nn.Module):
    """Flattens images itself: view(B, -1) before its first Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.view(x.size(0), -1))


class CNN1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(6, 8, 5)
        self.head = nn.Linear(8, 2)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(signal)).mean(-1))


class Unsqueezed1d(nn.Module):
    """Takes (N, L) audio and adds the channel dim itself."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 9, stride=4)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.conv(wave.unsqueeze(1)).amax(-1)


class CNN2d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.fc = nn.Linear(8, 5)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(image).flatten(1))


class LeNet(nn.Module):
    """A fixed input size: only 28x28 makes the flattened features fit fc1."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc1(x.flatten(1))


class CNN3d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3)
        self.pool = nn.AdaptiveAvgPool3d(1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(clip)).flatten(1)


class LSTMTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(10, 16, num_layers=2, batch_first=True)
        self.out = nn.Linear(16, 4)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(seq)
        return self.out(h)


class SeqFirstGRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(7, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class PlainRNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(5, 6, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[1]


class PermutedLSTM(nn.Module):
    """Takes (N, C, L) features and permutes them to (L, N, C) for a sequence-first LSTM."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(20, 8)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.lstm(feats.permute(2, 0, 1))[0]


class TextClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(1000, 32)
        self.fc = nn.Linear(32, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc(self.emb(tokens).mean(1))


class Encoder(nn.Module):
    """An embedding + transformer encoder text model with a padding mask."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(500, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, ids: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.emb(ids), src_key_padding_mask=padding)


class FeatureEncoder(nn.Module):
    """A transformer encoder over continuous features, sequence first."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(24, 4, 48, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        return self.encoder(src)


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return self.attn(q, kv, kv)[0]


class NormFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(18)
        self.fc = nn.Linear(18, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x))


class Masked(nn.Module):
    """A second input that reaches no layer: a mask used by masked_fill."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.fc(x).masked_fill(mask, 0.0)


class TwoTowers(nn.Module):
    """Two inputs feeding different layers: an image and a token sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.emb = nn.Embedding(50, 8)

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.conv(image).mean((2, 3)) + self.emb(tokens).mean(1)


class Opaque(nn.Module):
    """No layer with parameters: nothing to infer from."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(3, 7).sum(0)


class UNet(nn.Module):
    def __init__(s):
        super().__init__()
        s.d1 = nn.Conv2d(1, 8, 3, padding=1)
        s.d2 = nn.Conv2d(8, 16, 3, padding=1)
        s.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        s.out = nn.Conv2d(16, 2, 1)

    def forward(s, img):
        a = F.relu(s.d1(img))
        b = F.relu(s.d2(F.max_pool2d(a, 2)))
        return s.out(torch.cat([s.up(b), a], 1))


class Seq2Seq(nn.Module):
    def __init__(s):
        super().__init__()
        s.src_emb = nn.Embedding(100, 32)
        s.tgt_emb = nn.Embedding(120, 32)
        s.tr = nn.Transformer(32, 4, 1, 1, 64, dropout=0.0, batch_first=True)
        s.out = nn.Linear(32, 120)

    def forward(s, src, tgt):
        return s.out(s.tr(s.src_emb(src), s.tgt_emb(tgt)))


class WithLengths(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(30, 8)
        s.rnn = nn.GRU(8, 8, batch_first=True)

    def forward(s, ids, lengths):
        h, _ = s.rnn(s.emb(ids))
        return h.sum(1) / lengths.unsqueeze(-1)


class CustomViT(nn.Module):
    def __init__(s):
        super().__init__()
        s.patch = nn.Conv2d(3, 32, 16, 16)
        s.pos = nn.Parameter(torch.zeros(1, 196, 32))
        s.enc = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 1, enable_nested_tensor=False
        )

    def forward(s, x):
        x = s.patch(x).flatten(2).transpose(1, 2) + s.pos
        return s.enc(x).mean(1)


class Wav(nn.Module):
    def __init__(s):
        super().__init__()
        s.fe = nn.Sequential(
            nn.Conv1d(1, 16, 10, 5),
            nn.GELU(),
            nn.Conv1d(16, 16, 3, 2),
            nn.Conv1d(16, 16, 3, 2),
            nn.Conv1d(16, 16, 3, 2),
            nn.Conv1d(16, 16, 2, 2),
            nn.Conv1d(16, 16, 2, 2),
        )

    def forward(s, audio):
        return s.fe(audio)


class CharCNN(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(70, 16)
        s.conv = nn.Conv1d(16, 32, 3)

    def forward(s, chars):
        return s.conv(s.emb(chars).transpose(1, 2)).amax(-1)


class Conv3dVideo(nn.Module):
    def __init__(s):
        super().__init__()
        s.c = nn.Sequential(
            nn.Conv3d(3, 8, (3, 7, 7), (1, 2, 2), (1, 3, 3)),
            nn.BatchNorm3d(8),
            nn.ReLU(),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            nn.AdaptiveAvgPool3d(1),
        )
        s.fc = nn.Linear(8, 4)

    def forward(s, video):
        return s.fc(s.c(video).flatten(1))


class LSTMCellLoop(nn.Module):
    def __init__(s):
        super().__init__()
        s.cell = nn.LSTMCell(6, 6)

    def forward(s, x):
        h = c = torch.zeros(x.shape[1], 6)
        for t in range(x.shape[0]):
            h, c = s.cell(x[t], (h, c))
        return h


class Mixer(nn.Module):
    """Token mixing: the input is transposed into a Linear over 8 tokens after a LayerNorm(16)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.tok = nn.Linear(8, 8)
        self.ch = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tok(self.norm(x).transpose(1, 2)).transpose(1, 2)
        return self.ch(x + y)


class RecSys(nn.Module):
    """Two id inputs into two embeddings, multiplied: one id per sample would do as well."""

    def __init__(self) -> None:
        super().__init__()
        self.users = nn.Embedding(50, 8)
        self.items = nn.Embedding(80, 8)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return (self.users(user) * self.items(item)).sum(-1)
