"""The SE-ResNet with real batch norm, for training; folds into :class:`Lc0Net`'s state exactly.

Every convolution that lc0 batch-normalises (input, both convs of each block, policy1 or the
classical policy conv, value and moves-left convs) becomes conv (no bias) + BatchNorm2d(eps=1e-5).
:meth:`TrainableLc0Net.folded_state` gives the float32 state dict of the inference model, which
the writer stores in a ``.pb.gz`` lc0 loads.

>>> net = TrainableLc0Net(spec)                              # doctest: +SKIP
>>> Lc0Net.from_state(spec, net.folded_state())              # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from conceptchess.lc0.model import Lc0Net
from conceptchess.lc0.weights import BN_EPSILON, NetSpec


class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPSILON)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        bn = self.bn
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
        w = self.conv.weight.detach() * scale[:, None, None, None]
        b = bn.bias.detach() - bn.running_mean * scale
        return w.cpu().numpy().astype(np.float32), b.cpu().numpy().astype(np.float32)


class TrainableLc0Net(Lc0Net):
    _BN_CONVS = ("input", "policy1", "value_conv", "mlh_conv")

    def __init__(self, spec: NetSpec):
        super().__init__(spec)
        c = spec.filters
        self.input = ConvBN(112, c, 3)
        for block in self.blocks:
            block.conv1 = ConvBN(c, c, 3)
            block.conv2 = ConvBN(c, c, 3)
        if spec.policy == "convolution":
            self.policy1 = ConvBN(c, c, 3)
        else:
            self.policy = ConvBN(c, spec.policy_channels, 1)
        self.value_conv = ConvBN(c, spec.value_channels, 1)
        if spec.moves_left:
            self.mlh_conv = ConvBN(c, spec.mlh_channels, 1)

    def folded_state(self) -> dict[str, np.ndarray]:
        """The state dict of the equivalent inference :class:`Lc0Net` (batch norm folded)."""
        out: dict[str, np.ndarray] = {}
        folded_prefixes = []
        for name, mod in self.named_modules():
            if isinstance(mod, ConvBN):
                out[f"{name}.weight"], out[f"{name}.bias"] = mod.folded()
                folded_prefixes.append(name + ".")
        for k, v in self.state_dict().items():
            if not any(k.startswith(p) for p in folded_prefixes):
                out[k] = v.detach().cpu().numpy().astype(np.float32)
        return out

    def to_inference(self) -> Lc0Net:
        return Lc0Net.from_state(self.spec, self.folded_state())
