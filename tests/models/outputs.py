"""Models whose outputs are structures: a HF ModelOutput, a plain dataclass, nested containers."""

import dataclasses

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling


@dataclasses.dataclass
class Prediction:
    logits: torch.Tensor
    extra: tuple[torch.Tensor, torch.Tensor]


class HFStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> BaseModelOutputWithPooling:
        h = self.fc(input_ids.float().unsqueeze(-1).expand(-1, -1, 4))
        if attention_mask is not None:
            h = h * attention_mask.unsqueeze(-1)
        return BaseModelOutputWithPooling(last_hidden_state=h, pooler_output=h.mean(1))


class DataclassOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> Prediction:
        h = self.fc(x)
        return Prediction(h, (h * 2, h.argmax(-1)))


class NestedOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> tuple[object, ...]:
        h = self.fc(x)
        return (h, (h * 2, h.sum(-1))), {"past": [(h - 1, h + 1)]}
