"""Bidirectional LSTM acoustic model: ``(B, T, F)`` features -> ``(B, T', K)`` log-probabilities.

Padding never leaks into the backward direction.  A plain ``nn.LSTM(bidirectional=True)`` on a
padded batch starts its backward pass at frame ``T - 1``, so for every sequence shorter than
``T`` the backward state of the valid frames is computed *after* reading the padding.  Three
ways to run the model, chosen by ``BiLSTMConfig.exact``:

``"reverse"``  (exact; the fastest exact mode measured, CPU and GPU)
    Per layer, the forward direction runs on the padded batch (its padding trails, so it only
    affects padded outputs) and the backward direction runs on each sequence reversed *within
    its own length* (``index[b, t] = L_b - 1 - t`` for ``t < L_b``, else ``t``), then the
    result is reversed back with the same gather.  Padding trails in both directions.  Both
    directions call the same kernel as ``nn.LSTM`` (``torch.lstm``: oneDNN on CPU, cuDNN on
    GPU) with the layer's own ``nn.LSTM`` parameters, so weights and ``state_dict`` keys are the
    ones of a standard bidirectional ``nn.LSTM`` per layer.  The reversal is an involution, so
    its backward pass is the same gather (no scatter-add).
``"packed"``   (exact)
    ``pack_padded_sequence`` through every layer (cuDNN runs both directions in one call).
    On CPU packed sequences leave the oneDNN path and are about seven times slower; on an
    H100 they were as fast as ``"reverse"`` at batch 16 and 9% slower at batch 64.
``"none"``     (inexact, for comparison): the padded batch through ``nn.LSTM`` as is.
``"auto"``     ``"reverse"``, the fastest exact mode measured on both CPU and GPU.

All modes share the same parameters, so a model trained with one runs with any other.

Input stacking (``stack=j`` in 1..8, "low frame rate" models) stacks ``j`` consecutive feature
frames into one before the first layer (``(B, T, F) -> (B, ceil(T/j), j*F)``, the tail padded with
zeros, ``lengths -> ceil(lengths / j)``): every layer then runs at ``1/j`` of the frame rate,
about ``j`` times faster. Phones last several 10-ms frames, so ``j = 3`` or ``4`` loses little.

Subsampling (``subsample=k`` in 1..4) stacks ``k`` consecutive frames of the first layer's
output (pyramidal BiLSTM, as in Listen-Attend-Spell): ``(B, T, D) -> (B, ceil(T/k), k*D)``, the
tail padded with zeros, and ``out_lengths = ceil(lengths / k)``.  Outputs at padded frames are
zeroed after every layer, so a partial last group is completed with zeros whatever the padding
held.  Frame stacking keeps all the information of the first layer (pooling would discard it)
at the price of a ``k`` times wider input to the second layer.

Convolutional front end (``conv_channels=C > 0``, as ESPnet's VGG-BLSTM but without time
subsampling): two 3x3 ``Conv2d`` layers with ReLU over (time, frequency), each halving the
frequency axis (stride 2 along frequency, 1 along time): ``(B, T, F) -> (B, T, C * ceil(F/4))``.
The input and the output of each convolution are zeroed at padded frames, so a padded batch gives
the same valid outputs as each sequence alone (the convolutions' own zero padding is what the
last frames see either way). Stacking then works on the convolution's output.

Dropout (``dropout``) is applied to the output of every LSTM layer except the last, as
``nn.LSTM(dropout=...)`` does.  The optional input projection (``proj > 0``) is a linear map
``F -> proj`` without a non-linearity.  Outputs: LSTM outputs at padded frames are zero, so the
log-probabilities there are ``log_softmax`` of the output bias: constant, independent of the
padding values.  Consumers must still use ``out_lengths``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from phonrec.config import ConfigError, dataclass_from

EXACT_MODES = ("auto", "reverse", "packed", "none")


@dataclass
class BiLSTMConfig:
    """Shape of the acoustic model.

    Attributes:
        hidden: LSTM units per direction.
        layers: number of stacked LSTM layers.
        dropout: dropout probability between LSTM layers (0 <= dropout < 1).
        proj: input projection dimension; 0 = feed the (stacked) features directly.
        conv_channels: channels of the two-layer convolutional front end; 0 = none.
        stack: feature frames stacked into one input frame (1..8) before layer 1.
        subsample: frame subsampling factor (1, 2, 3 or 4) by stacking frames after layer 1.
        bidirectional: False gives a streaming (causal) unidirectional LSTM.
        exact: ``"auto"`` | ``"reverse"`` | ``"packed"`` | ``"none"`` (see module docstring).
    """

    hidden: int = 256
    layers: int = 3
    dropout: float = 0.2
    proj: int = 0
    conv_channels: int = 0
    stack: int = 1
    subsample: int = 1
    bidirectional: bool = True
    exact: str = "auto"

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "proj", "conv_channels", "stack", "subsample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"BiLSTMConfig.{name} must be an int, got {value!r}")
        if self.hidden < 1:
            raise ValueError(f"BiLSTMConfig.hidden must be >= 1, got {self.hidden}")
        if self.layers < 1:
            raise ValueError(f"BiLSTMConfig.layers must be >= 1, got {self.layers}")
        if self.conv_channels < 0:
            raise ValueError(f"BiLSTMConfig.conv_channels must be >= 0 (0 = no front end), got {self.conv_channels}")
        if self.proj < 0:
            raise ValueError(f"BiLSTMConfig.proj must be >= 0 (0 = no projection), got {self.proj}")
        if not 1 <= self.stack <= 8:
            raise ValueError(f"BiLSTMConfig.stack must be in 1..8, got {self.stack}")
        if self.subsample not in (1, 2, 3, 4):
            raise ValueError(f"BiLSTMConfig.subsample must be 1, 2, 3 or 4, got {self.subsample}")
        if (
            isinstance(self.dropout, bool)
            or not isinstance(self.dropout, (int, float))
            or not 0.0 <= self.dropout < 1.0
        ):
            raise ValueError(f"BiLSTMConfig.dropout must be a float in [0, 1), got {self.dropout!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"BiLSTMConfig.bidirectional must be a bool, got {self.bidirectional!r}")
        if self.exact not in EXACT_MODES:
            raise ValueError(f"BiLSTMConfig.exact must be one of {EXACT_MODES}, got {self.exact!r}")

    @property
    def frame_factor(self) -> int:
        """Feature frames per output frame: ``stack * subsample``."""
        return self.stack * self.subsample


def ceil_div(lengths: Tensor, k: int) -> Tensor:
    """(B,) ``ceil(lengths / k)``: frame counts after stacking ``k`` frames into one."""
    return torch.div(lengths + (k - 1), k, rounding_mode="floor")


def reverse_index(lengths: Tensor, max_len: int) -> Tensor:
    """Per-sequence reversal within each length.

    Args:
        lengths: (B,) int64, ``1 <= lengths <= max_len``.
        max_len: ``T``.

    Returns:
        (B, T) int64 with ``index[b, t] = L_b - 1 - t`` for ``t < L_b``, else ``t``.
        It is its own inverse.
    """
    t = torch.arange(max_len, device=lengths.device).unsqueeze(0)  # (1, T)
    L = lengths.to(torch.long).unsqueeze(1)  # (B, 1)
    return torch.where(t < L, L - 1 - t, t)


class _ReverseWithin(torch.autograd.Function):
    """``out = x.gather(1, index)`` for an involutive ``index``; backward is the same gather."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, index: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        return x.gather(1, index)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (index,) = ctx.saved_tensors
        return grad.gather(1, index), None


def reverse_within(x: Tensor, index: Tensor) -> Tensor:
    """Reverse every sequence of ``x`` within its own length.

    Args:
        x: (B, T, D).
        index: (B, T) from :func:`reverse_index`.

    Returns:
        (B, T, D) with ``out[b, t] = x[b, index[b, t]]``.
    """
    return _ReverseWithin.apply(x, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class ConvFrontEnd(nn.Module):
    """Two 3x3 convolutions with ReLU, each halving the frequency axis.

    Args:
        channels: output channels ``C`` of both convolutions.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, stride=(1, 2), padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=(1, 2), padding=1)

    def output_dim(self, input_dim: int) -> int:
        """Features per frame after the front end: ``C * ceil(F / 4)`` (two stride-2 halvings)."""
        return self.conv2.out_channels * ((input_dim + 3) // 4)

    def forward(self, feats: Tensor, lengths: Tensor, mask: Any) -> Tensor:
        """(B, T, F) -> (B, T, C * ceil(F/4)), zero at ``t >= lengths[b]``.

        Args:
            mask: ``mask(x, lengths)`` zeroing a (B, T, D) tensor at padded frames.
        """
        B, T, _ = feats.shape
        x = mask(feats, lengths).unsqueeze(1)  # (B, 1, T, F)
        valid = (torch.arange(T, device=feats.device).unsqueeze(0) < lengths.unsqueeze(1)).to(feats.dtype)
        valid = valid[:, None, :, None]  # (B, 1, T, 1)
        x = torch.relu(self.conv1(x)) * valid
        x = torch.relu(self.conv2(x)) * valid  # (B, C, T, F')
        return x.permute(0, 2, 1, 3).reshape(B, T, -1)


class BiLSTM(nn.Module):
    """Stacked (Bi)LSTM with a linear output layer and ``log_softmax``.

    Args:
        input_dim: feature dimension ``F``.
        num_classes: output classes ``K`` (phones, plus the blank for CTC).
        cfg: :class:`BiLSTMConfig`.

    Example::

        model = BiLSTM(80, 40, BiLSTMConfig(hidden=128, layers=2))
        log_probs, out_lengths = model(torch.randn(4, 100, 80), torch.tensor([100, 80, 50, 1]))
    """

    def __init__(self, input_dim: int, num_classes: int, cfg: BiLSTMConfig | None = None) -> None:
        super().__init__()
        cfg = BiLSTMConfig() if cfg is None else cfg
        if not isinstance(cfg, BiLSTMConfig):
            raise ValueError(f"cfg must be a BiLSTMConfig, got {type(cfg).__name__}")
        if input_dim < 1:
            raise ValueError(f"input_dim must be >= 1, got {input_dim}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.cfg = cfg
        self.input_dim = input_dim
        self.num_classes = num_classes
        dirs = 2 if cfg.bidirectional else 1
        self.conv = ConvFrontEnd(cfg.conv_channels) if cfg.conv_channels > 0 else None
        frame_dim = self.conv.output_dim(input_dim) if self.conv is not None else input_dim
        self.proj = nn.Linear(frame_dim * cfg.stack, cfg.proj) if cfg.proj > 0 else None
        in_dim = cfg.proj if cfg.proj > 0 else frame_dim * cfg.stack
        self.rnns = nn.ModuleList()
        for i in range(cfg.layers):
            self.rnns.append(
                nn.LSTM(in_dim, cfg.hidden, num_layers=1, batch_first=True, bidirectional=cfg.bidirectional)
            )
            in_dim = cfg.hidden * dirs * (cfg.subsample if i == 0 else 1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.hidden * dirs, num_classes)

    @classmethod
    def from_config(cls, input_dim: int, num_classes: int, cfg: Mapping[str, Any]) -> "BiLSTM":
        """Build from a plain mapping (the Hydra ``model`` group).

        ``name`` is accepted and must be ``"bilstm"``; every other key must be a
        :class:`BiLSTMConfig` field (read through :func:`phonrec.config.dataclass_from`).

        Raises:
            ConfigError: a ValueError naming ``model.key`` for unknown or mistyped keys, or a wrong ``name``.
        """
        if not isinstance(cfg, Mapping):
            try:  # an omegaconf DictConfig is a MutableMapping already; anything else is an error
                cfg = dict(cfg)
            except (TypeError, ValueError):
                raise ValueError(f"model config must be a mapping, got {type(cfg).__name__}") from None
        values = {str(k): v for k, v in cfg.items()}
        name = values.pop("name", "bilstm")
        if name != "bilstm":
            raise ConfigError(f"model.name must be 'bilstm', got {name!r}")
        return cls(input_dim, num_classes, dataclass_from(BiLSTMConfig, values, "model"))

    def num_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """(B,) output frame counts: ``ceil(lengths / (stack * subsample))``."""
        return ceil_div(lengths, self.cfg.frame_factor)

    def resolve_exact(self, device: torch.device) -> str:
        """The mode ``forward`` uses on ``device`` (``"auto"`` resolved)."""
        if self.cfg.exact != "auto":
            return self.cfg.exact
        # Measured (bench/bilstm_exact.py, 3x256, 300-420 frames): CPU, 2 threads: reverse
        # 6.9x packed's frames/s; H100: reverse equal to packed at batch 16, 1.09x at batch 64.
        return "reverse"

    def _check(self, feats: Tensor, lengths: Tensor) -> None:
        if feats.dim() != 3 or feats.shape[-1] != self.input_dim:
            raise ValueError(f"feats must be (B, T, F={self.input_dim}), got {tuple(feats.shape)}")
        B, T, _ = feats.shape
        if lengths.dim() != 1 or lengths.shape[0] != B or lengths.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"lengths must be an integer tensor of shape (B={B},), got {lengths.dtype} {tuple(lengths.shape)}"
            )
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(f"lengths must satisfy 1 <= lengths <= T={T}, got min {lo} max {hi}")

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Per-frame log-probabilities.

        Args:
            feats: (B, T, F) features; frames at ``t >= lengths[b]`` are padding.
            lengths: (B,) int64 valid frames per sequence, ``1 <= lengths <= T``; on the CPU or
                on ``feats``' device (CPU lengths spare the packed mode a device sync).

        Returns:
            log_probs: (B, T', K) with ``T' = ceil(T / (stack * subsample))``.
            out_lengths: (B,) int64 ``ceil(lengths / (stack * subsample))``, on ``lengths``' device.
        """
        self._check(feats, lengths)
        lengths_device, lengths_in = lengths.device, lengths
        lengths = lengths.to(device=feats.device, dtype=torch.long)
        if self.conv is not None:
            feats = self.conv(feats, lengths, self._mask)
        if self.cfg.stack > 1:
            j = self.cfg.stack
            feats = self._stack(self._mask(feats, lengths), j)
            lengths = ceil_div(lengths, j)
            lengths_in = ceil_div(lengths_in, j)
        x = self.proj(feats) if self.proj is not None else feats
        mode = self.resolve_exact(feats.device)
        if not self.cfg.bidirectional and mode == "reverse":
            mode = "none"  # a forward-only LSTM is exact on padded input: padding trails
        if mode == "packed":
            x, out_lengths = self._forward_packed(x, lengths_in.to(device="cpu", dtype=torch.long))
        else:
            x, out_lengths = self._forward_padded(x, lengths, reverse=(mode == "reverse"))
        return torch.log_softmax(self.output(x), dim=-1), out_lengths.to(lengths_device)

    def _mask(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Zero (B, T, D) at ``t >= lengths[b]``."""
        valid = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        return x * valid.unsqueeze(-1).to(x.dtype)

    @staticmethod
    def _stack(x: Tensor, k: int) -> Tensor:
        """(B, T, D) -> (B, ceil(T/k), k*D); the tail is padded with zeros."""
        B, T, D = x.shape
        pad = (-T) % k
        if pad:
            x = torch.cat([x, x.new_zeros(B, pad, D)], dim=1)
        return x.reshape(B, (T + pad) // k, k * D)

    def _forward_padded(self, x: Tensor, lengths: Tensor, reverse: bool) -> tuple[Tensor, Tensor]:
        B, T, _ = x.shape
        index = reverse_index(lengths, T) if reverse else None
        for i, rnn in enumerate(self.rnns):
            if i > 0:
                x = self.dropout(x)
            if reverse:
                x = self._bidir_reverse(rnn, x, index)
            else:
                x, _ = rnn(x)
            x = self._mask(x, lengths)
            if i == 0 and self.cfg.subsample > 1:
                x = self._stack(x, self.cfg.subsample)
                lengths = ceil_div(lengths, self.cfg.subsample)
                if reverse and i + 1 < len(self.rnns):
                    index = reverse_index(lengths, x.shape[1])
        return x, lengths

    @staticmethod
    def _bidir_reverse(rnn: nn.LSTM, x: Tensor, index: Tensor) -> Tensor:
        """One bidirectional layer, the backward direction run on ``x`` reversed within lengths.

        Args:
            x: (B, T, D_in); index: (B, T) from :func:`reverse_index`.

        Returns:
            (B, T, 2H): forward outputs then backward outputs, as ``nn.LSTM`` orders them.
        """
        B = x.shape[0]
        H = rnn.hidden_size
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        w_fwd = [getattr(rnn, n) for n in names]
        w_bwd = [getattr(rnn, n + "_reverse") for n in names]
        h0 = x.new_zeros(1, B, H)
        hx = (h0, h0)
        # torch.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
        # the kernel nn.LSTM.forward calls, here once per direction.
        x_rev = reverse_within(x, index)
        if x.is_cuda:
            # cuDNN copies one direction's weights (views into the layer's two-direction
            # buffer) into a scratch buffer on every call and warns; the copy is a few MB per
            # layer and cost no measurable speed on an H100 (bench/bilstm_exact.py).
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous chunk")
                fwd = torch.lstm(x, hx, w_fwd, True, 1, 0.0, rnn.training, False, True)[0]
                bwd = torch.lstm(x_rev, hx, w_bwd, True, 1, 0.0, rnn.training, False, True)[0]
        else:
            fwd = torch.lstm(x, hx, w_fwd, True, 1, 0.0, rnn.training, False, True)[0]
            bwd = torch.lstm(x_rev, hx, w_bwd, True, 1, 0.0, rnn.training, False, True)[0]
        return torch.cat([fwd, reverse_within(bwd, index)], dim=-1)

    def _forward_packed(self, x: Tensor, lengths_cpu: Tensor) -> tuple[Tensor, Tensor]:
        T = x.shape[1]
        lengths = lengths_cpu
        packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
        for i, rnn in enumerate(self.rnns):
            if i > 0:
                packed = PackedSequence(
                    self.dropout(packed.data), packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
                )
            packed, _ = rnn(packed)
            if i == 0 and self.cfg.subsample > 1:
                x, _ = pad_packed_sequence(packed, batch_first=True, total_length=T)  # zeros at padding
                x = self._stack(x, self.cfg.subsample)
                lengths = ceil_div(lengths, self.cfg.subsample)
                T = x.shape[1]
                packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        x, _ = pad_packed_sequence(packed, batch_first=True, total_length=T)
        return x, lengths
