"""lc0's SE-ResNet as a torch module, with batch norm already folded into each convolution.

``forward`` returns a dict keyed by the project's tap names: ``block0`` … ``block{N-1}`` (output of
residual block i after the residual add and activation), ``policy`` (1858 raw logits), ``wdl``
(softmaxed W, D, L for the side to move) or ``value`` (tanh), and ``mlh`` when the net has one.
``forward_to(tap, planes)`` runs the network up to a tap and ``forward_from(tap, z)`` on from it, so a
tap's activations can be edited in between (amplification).

>>> spec, state = read_weights("maia-1100.pb.gz")           # doctest: +SKIP
>>> net = Lc0Net.from_state(spec, state)                    # doctest: +SKIP
>>> out = net(torch.zeros(1, 112, 8, 8)); out["policy"].shape  # doctest: +SKIP
torch.Size([1, 1858])
>>> z = net.forward_to("block3", planes)                   # doctest: +SKIP
>>> net.forward_from("block3", 2 * z)["wdl"]               # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from conceptchess.lc0.policy_map import CONV_POLICY_MAP
from conceptchess.lc0.weights import NetSpec
from conceptchess.taps import INPUT, block, block_index, block_taps, check, network_taps


def _act(name: str):
    return F.mish if name == "mish" else F.relu


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, se_channels: int, activation: str):
        super().__init__()
        self.fc1 = nn.Linear(channels, se_channels)
        self.fc2 = nn.Linear(se_channels, 2 * channels)
        self.act = _act(activation)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(self.act(self.fc1(x.mean(dim=(2, 3)))))
        gamma, beta = y[:, : self.channels, None, None], y[:, self.channels :, None, None]
        return torch.sigmoid(gamma) * x + beta


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, se_channels: int, activation: str):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.se = SqueezeExcite(channels, se_channels, activation) if se_channels else None
        self.act = _act(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.act(self.conv1(x)))
        if self.se is not None:
            y = self.se(y)
        return self.act(y + x)


class Lc0Net(nn.Module):
    def __init__(self, spec: NetSpec):
        super().__init__()
        self.spec = spec
        c = spec.filters
        self.act = _act(spec.activation)
        self.input = nn.Conv2d(112, c, 3, padding=1)
        self.blocks = nn.ModuleList(ResidualBlock(c, spec.se_channels, spec.activation) for _ in range(spec.blocks))
        if spec.policy == "convolution":
            self.policy1 = nn.Conv2d(c, c, 3, padding=1)
            self.policy = nn.Conv2d(c, 80, 3, padding=1)
            self.register_buffer("policy_map", torch.as_tensor(CONV_POLICY_MAP, dtype=torch.long), persistent=False)
        else:
            self.policy = nn.Conv2d(c, spec.policy_channels, 1)
            self.ip_pol = nn.Linear(spec.policy_channels * 64, 1858)
        self.value_conv = nn.Conv2d(c, spec.value_channels, 1)
        self.ip1_val = nn.Linear(spec.value_channels * 64, spec.value_hidden)
        self.ip2_val = nn.Linear(spec.value_hidden, 3 if spec.value == "wdl" else 1)
        if spec.moves_left:
            self.mlh_conv = nn.Conv2d(c, spec.mlh_channels, 1)
            self.ip1_mov = nn.Linear(spec.mlh_channels * 64, spec.mlh_hidden)
            self.ip2_mov = nn.Linear(spec.mlh_hidden, 1)

    @classmethod
    def from_state(cls, spec: NetSpec, state: dict[str, np.ndarray]) -> "Lc0Net":
        net = cls(spec)
        net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
        return net.eval()

    def numpy_state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self.state_dict().items()}

    @property
    def output_names(self) -> list[str]:
        names = ["policy", "wdl" if self.spec.value == "wdl" else "value"]
        if self.spec.moves_left:
            names.append("mlh")
        return names + block_taps(self.spec.blocks)

    def heads(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits-level outputs (policy logits, WDL logits or pre-tanh value, mlh) from the body output."""
        out: dict[str, torch.Tensor] = {}
        if self.spec.policy == "convolution":
            p = self.policy(self.act(self.policy1(x))).flatten(1)
            out["policy"] = p.index_select(1, self.policy_map)
        else:
            out["policy"] = self.ip_pol(self.act(self.policy(x)).flatten(1))
        v = self.act(self.ip1_val(self.act(self.value_conv(x)).flatten(1)))
        out["value_logits"] = self.ip2_val(v)
        if self.spec.moves_left:
            m = self.act(self.ip1_mov(self.act(self.mlh_conv(x)).flatten(1)))
            out["mlh"] = F.relu(self.ip2_mov(m)).squeeze(1)
        return out

    def forward(self, planes: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_from(INPUT, planes)

    # -- to and from a tap: run part of the network (amplification edits a tap's activations in between) --
    def tap_index(self, tap: str) -> int:
        """``i`` for ``block{i}``, -1 for ``input``; a one-line error for a tap this network lacks."""
        check([tap], network_taps(self.spec.blocks), "this network")
        return -1 if tap == INPUT else block_index(tap)

    def forward_to(self, tap: str, planes: torch.Tensor) -> torch.Tensor:
        """The activations at ``tap`` ([N, C, 8, 8]; ``input``: the planes themselves), running only the body up to it."""
        i = self.tap_index(tap)
        if i < 0:
            return planes
        x = self.act(self.input(planes))
        for residual in self.blocks[: i + 1]:
            x = residual(x)
        return x

    def forward_from(self, tap: str, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """What :meth:`forward` returns when ``tap`` holds ``z``: the heads and the block taps after ``tap``.

        ``forward_from(tap, forward_to(tap, planes))`` equals ``forward(planes)`` less the taps up to ``tap``.
        """
        i = self.tap_index(tap)
        x = self.act(self.input(z)) if i < 0 else z
        taps = {}
        for j in range(i + 1, len(self.blocks)):
            x = self.blocks[j](x)
            taps[block(j)] = x
        out = self.heads(x)
        v = out.pop("value_logits")
        if self.spec.value == "wdl":
            out["wdl"] = torch.softmax(v, dim=1)
        else:
            out["value"] = torch.tanh(v).squeeze(1)
        out.update(taps)
        return out
