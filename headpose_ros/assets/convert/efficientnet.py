"""EfficientNet-B0 in plain torch, numerically equal to the Keras implementation.

The Keras EfficientNet that WHENet was trained with (qubvel's ``efficientnet``
package, Tan & Le 2019) differs from the usual torch conventions in ways that
change the numbers, so this module reproduces it exactly rather than reusing a
torch EfficientNet:

* **"same" padding is TensorFlow's.** For a convolution of kernel ``k`` and
  stride ``s`` over ``n`` pixels, TF pads ``max((ceil(n/s) - 1) * s + k - n, 0)``
  pixels in total, the smaller half before (top/left) and the larger half after
  (bottom/right). With stride 1 and an odd kernel that is ``k // 2`` on each
  side (torch's symmetric padding agrees), but every stride-2 convolution of an
  even-sized input gets one pixel more at the bottom/right than at the
  top/left. ``Conv2dSame`` pads that way.
* **Batch normalisation uses eps = 1e-3** (Keras' default), not torch's 1e-5.
* **Activation is swish**, x * sigmoid(x).
* **Squeeze-and-excitation** (every block): the spatial mean of the block's
  expanded features (N, C, 1, 1), a 1x1 convolution with bias down to
  ``max(1, int(block_input_channels * 0.25))`` channels, swish, a 1x1
  convolution with bias back to C channels, sigmoid, and a per-channel
  multiplication of the features. The reduced width follows the block's
  *input* channels, not the expanded ones (e.g. 96 -> 4 in block 2a).
* **Residual** connections exist only where the stride is 1 and the input and
  output widths agree. Keras applies drop-connect there during training only;
  at inference it is the identity, so it does not appear here.

These details matter: on WHENet's weights and real face crops, torch's
symmetric padding moves the logits by up to 2.1 (the decoded angles by up to
6.8 degrees), and eps 1e-5 by 0.65 (3.4 degrees); the exact rebuild matches
Keras to 4e-6.

Module names follow the Keras layer names of ``efficientnet`` 1.1.1
(``block2a_expand_conv`` is ``blocks.block2a.expand_conv`` here), and
``EfficientNet.keras_layers`` lists the weighted layers in the order Keras
builds them, which is the order a Keras weights file stores them in. That is
what a weight loader needs to map a Keras file onto this module (see
``headpose_ros.assets.convert.whenet``).

The layout is NCHW, as usual in torch; the input is (N, 3, H, W) float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "B0_STAGES",
    "BN_EPS",
    "Conv2dSame",
    "EfficientNet",
    "KerasLayer",
    "MBConvBlock",
    "StageArgs",
    "efficientnet_b0",
    "tf_same_padding",
]

#: Keras BatchNormalization's default epsilon (torch's default is 1e-5).
BN_EPS = 1e-3


@dataclass(frozen=True)
class StageArgs:
    """One stage of MBConv blocks: ``repeats`` blocks, the first one with ``stride``.

    Channel counts are for width coefficient 1.0 (B0). Only the first block of
    a stage changes the width (``in_channels`` -> ``out_channels``) and the
    resolution; the others map ``out_channels`` to itself with stride 1.
    """

    kernel: int
    repeats: int
    in_channels: int
    out_channels: int
    expand_ratio: int
    stride: int
    se_ratio: float = 0.25


#: EfficientNet-B0's seven stages (Tan & Le 2019, table 1; efficientnet 1.1.1's
#: DEFAULT_BLOCKS_ARGS): 16 MBConv blocks in all.
B0_STAGES: tuple[StageArgs, ...] = (
    StageArgs(kernel=3, repeats=1, in_channels=32, out_channels=16, expand_ratio=1, stride=1),
    StageArgs(kernel=3, repeats=2, in_channels=16, out_channels=24, expand_ratio=6, stride=2),
    StageArgs(kernel=5, repeats=2, in_channels=24, out_channels=40, expand_ratio=6, stride=2),
    StageArgs(kernel=3, repeats=3, in_channels=40, out_channels=80, expand_ratio=6, stride=2),
    StageArgs(kernel=5, repeats=3, in_channels=80, out_channels=112, expand_ratio=6, stride=1),
    StageArgs(kernel=5, repeats=4, in_channels=112, out_channels=192, expand_ratio=6, stride=2),
    StageArgs(kernel=3, repeats=1, in_channels=192, out_channels=320, expand_ratio=6, stride=1),
)


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding, in pixels, of TF's "same" along one axis of ``size`` pixels.

    The output then has ``ceil(size / stride)`` pixels. Odd totals put the
    extra pixel after (bottom/right): e.g. size 224, kernel 3, stride 2 ->
    (0, 1); size 112, kernel 5, stride 2 -> (1, 2).
    """
    out = -(-size // stride)  # ceil
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TF's "same" padding (dilation 1).

    With stride 1 and an odd kernel the padding is symmetric and is left to
    the convolution itself (one ONNX Conv). Otherwise the input is zero-padded
    explicitly before an unpadded convolution; the padding is computed from
    the input's height and width, which are fixed (224x224) when exported, so
    the padding is a constant of the ONNX graph (``convert.whenet`` then moves
    it into the Conv's own asymmetric ``pads``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False) -> None:
        symmetric = stride == 1 and kernel_size % 2 == 1
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=kernel_size // 2 if symmetric else 0, groups=groups, bias=bias)
        self._explicit_pad = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))."""
        if self._explicit_pad:
            kh, kw = self.kernel_size
            sh, sw = self.stride
            # int(): while exporting, the tracer records sizes as tensors; the
            # padding must become constants of the graph, not a computation.
            top, bottom = tf_same_padding(int(x.shape[-2]), kh, sh)
            left, right = tf_same_padding(int(x.shape[-1]), kw, sw)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


@dataclass(frozen=True)
class KerasLayer:
    """A weighted Keras layer and the torch module that holds its weights.

    kind: the Keras layer type in Keras 2's automatic-name form: ``conv2d``,
    ``depthwise_conv2d``, ``batch_normalization`` or ``dense``.
    keras_name: the layer's name in efficientnet 1.1.1 (e.g. ``block2a_dwconv``)
    or in the model built around it (e.g. ``yaw_new``).
    path: the module's qualified name in the torch model (e.g. ``blocks.block2a.dwconv``).
    """

    kind: str
    keras_name: str
    path: str
    module: nn.Module


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation (Keras ``mb_conv_block``).

    (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).
    Submodules, in Keras' build order: ``expand_conv``/``expand_bn`` (absent
    when expand_ratio is 1), ``dwconv``/``bn``, ``se_reduce``, ``se_expand``,
    ``project_conv``/``project_bn``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 expand_ratio: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        mid = in_channels * expand_ratio
        self.expand = expand_ratio != 1
        if self.expand:
            self.expand_conv = Conv2dSame(in_channels, mid, 1)
            self.expand_bn = _bn(mid)
        self.dwconv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid)
        self.bn = _bn(mid)
        reduced = max(1, int(in_channels * se_ratio))
        self.se_reduce = nn.Conv2d(mid, reduced, 1, bias=True)
        self.se_expand = nn.Conv2d(reduced, mid, 1, bias=True)
        self.project_conv = Conv2dSame(mid, out_channels, 1)
        self.project_bn = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.silu(self.expand_bn(self.expand_conv(y)))
        y = F.silu(self.bn(self.dwconv(y)))
        # Squeeze-and-excitation: per-channel gates from the global mean.
        s = y.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.se_expand(F.silu(self.se_reduce(s))))
        y = self.project_bn(self.project_conv(y * s))
        return y + x if self.residual else y

    def keras_layers(self, prefix: str) -> list[KerasLayer]:
        """This block's weighted layers in Keras' build order.

        ``prefix`` is the block's qualified name in the model, e.g.
        ``blocks.block2a``; its last component is the Keras name prefix.
        """
        block = prefix.rsplit(".", 1)[-1]
        names = ((["expand_conv", "expand_bn"] if self.expand else [])
                 + ["dwconv", "bn", "se_reduce", "se_expand", "project_conv", "project_bn"])
        kinds = {"dwconv": "depthwise_conv2d", "expand_bn": "batch_normalization",
                 "bn": "batch_normalization", "project_bn": "batch_normalization"}
        return [KerasLayer(kinds.get(n, "conv2d"), f"{block}_{n}", f"{prefix}.{n}", getattr(self, n))
                for n in names]


class EfficientNet(nn.Module):
    """EfficientNet feature extractor, Keras ``include_top=False``: no pooling, no classifier.

    Input: (N, 3, H, W) float32, normalised as the weights expect (WHENet:
    ImageNet mean/std of pixel / 255). Output: (N, 1280, ceil(H / 32),
    ceil(W / 32)) features after the top convolution, its batch norm and
    swish; (N, 1280, 7, 7) for a 224x224 input.

    Submodules: ``stem_conv``/``stem_bn``; ``blocks`` (an ``nn.Sequential``
    of ``MBConvBlock`` named like Keras: ``block1a``, ``block2a``,
    ``block2b``, ...); ``top_conv``/``top_bn``.
    """

    def __init__(self, stages: tuple[StageArgs, ...] = B0_STAGES, stem_channels: int = 32,
                 top_channels: int = 1280) -> None:
        super().__init__()
        if stages[0].in_channels != stem_channels:
            raise ValueError(f"the first stage takes {stages[0].in_channels} channels, "
                             f"the stem gives {stem_channels}")
        self.stem_conv = Conv2dSame(3, stem_channels, 3, stride=2)
        self.stem_bn = _bn(stem_channels)
        blocks = nn.Sequential()
        for i, st in enumerate(stages):
            for r in range(st.repeats):
                # Keras names the blocks of stage i "block{i+1}a", "...b", ...
                blocks.add_module(
                    f"block{i + 1}{chr(ord('a') + r)}",
                    MBConvBlock(st.in_channels if r == 0 else st.out_channels, st.out_channels,
                                st.kernel, st.stride if r == 0 else 1, st.expand_ratio,
                                st.se_ratio))
        self.blocks = blocks
        self.top_conv = Conv2dSame(stages[-1].out_channels, top_channels, 1)
        self.top_bn = _bn(top_channels)
        self.out_channels = top_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 1280, ceil(H / 32), ceil(W / 32))."""
        x = F.silu(self.stem_bn(self.stem_conv(x)))
        x = self.blocks(x)
        return F.silu(self.top_bn(self.top_conv(x)))

    def keras_layers(self, prefix: str = "") -> list[KerasLayer]:
        """Every weighted layer, in the order Keras builds (and saves) them.

        ``prefix`` is this module's qualified name inside a larger model
        (e.g. ``"backbone"``), so that ``KerasLayer.path`` is valid there.
        EfficientNet-B0 has 130: stem (2), 16 blocks (6 + 15 x 8), top (2).
        """
        p = f"{prefix}." if prefix else ""
        layers = [KerasLayer("conv2d", "stem_conv", f"{p}stem_conv", self.stem_conv),
                  KerasLayer("batch_normalization", "stem_bn", f"{p}stem_bn", self.stem_bn)]
        for name, block in self.blocks.named_children():
            layers += block.keras_layers(f"{p}blocks.{name}")
        layers += [KerasLayer("conv2d", "top_conv", f"{p}top_conv", self.top_conv),
                   KerasLayer("batch_normalization", "top_bn", f"{p}top_bn", self.top_bn)]
        return layers


def efficientnet_b0() -> EfficientNet:
    """EfficientNet-B0 features (width and depth coefficients 1.0), randomly initialised."""
    return EfficientNet(B0_STAGES)

