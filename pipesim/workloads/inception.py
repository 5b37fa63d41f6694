"""Inception-v3 (Szegedy et al., CVPR 2016) as an operator graph.

The torchvision layout without the auxiliary classifier, on 299x299 images:
a stem of five conv+BN+ReLU units and two max-poolings, then the branching
modules — three of type A (35x35), a grid reduction B, four of type C (17x17,
factorised 1x7/7x1 convolutions), a grid reduction D and two of type E
(8x8, expanded 1x3/3x1 branches) — each ending in a concatenation, then global
average pooling and a 1000-way classifier.  About 5.7 GMACs and 23.8 M
parameters per image.
"""

from __future__ import annotations

from pipesim.workloads.cnn import CNN, Tensor
from pipesim.workloads.opgraph import OpGraph

__all__ = ["inception_v3"]


def _module_a(net: CNN, x: Tensor, p: str, pool_features: int) -> Tensor:
    b1 = net.conv_bn(x, f"{p}.branch1x1", 64, 1)
    b5 = net.conv_bn(net.conv_bn(x, f"{p}.branch5x5_1", 48, 1), f"{p}.branch5x5_2", 64, 5, pad=2)
    b3 = net.conv_bn(x, f"{p}.branch3x3dbl_1", 64, 1)
    b3 = net.conv_bn(b3, f"{p}.branch3x3dbl_2", 96, 3, pad=1)
    b3 = net.conv_bn(b3, f"{p}.branch3x3dbl_3", 96, 3, pad=1)
    bp = net.conv_bn(net.pool(x, f"{p}.avgpool", 3, 1, pad=1), f"{p}.branch_pool", pool_features, 1)
    return net.concat([b1, b5, b3, bp], f"{p}.concat")


def _module_b(net: CNN, x: Tensor, p: str) -> Tensor:
    b3 = net.conv_bn(x, f"{p}.branch3x3", 384, 3, stride=2)
    bd = net.conv_bn(x, f"{p}.branch3x3dbl_1", 64, 1)
    bd = net.conv_bn(bd, f"{p}.branch3x3dbl_2", 96, 3, pad=1)
    bd = net.conv_bn(bd, f"{p}.branch3x3dbl_3", 96, 3, stride=2)
    return net.concat([b3, bd, net.pool(x, f"{p}.maxpool", 3, 2)], f"{p}.concat")


def _module_c(net: CNN, x: Tensor, p: str, c7: int) -> Tensor:
    b1 = net.conv_bn(x, f"{p}.branch1x1", 192, 1)
    b7 = net.conv_bn(x, f"{p}.branch7x7_1", c7, 1)
    b7 = net.conv_bn(b7, f"{p}.branch7x7_2", c7, (1, 7), pad=(0, 3))
    b7 = net.conv_bn(b7, f"{p}.branch7x7_3", 192, (7, 1), pad=(3, 0))
    bd = net.conv_bn(x, f"{p}.branch7x7dbl_1", c7, 1)
    for i, (kernel, pad, width) in enumerate(
        (((7, 1), (3, 0), c7), ((1, 7), (0, 3), c7), ((7, 1), (3, 0), c7), ((1, 7), (0, 3), 192)), start=2
    ):
        bd = net.conv_bn(bd, f"{p}.branch7x7dbl_{i}", width, kernel, pad=pad)
    bp = net.conv_bn(net.pool(x, f"{p}.avgpool", 3, 1, pad=1), f"{p}.branch_pool", 192, 1)
    return net.concat([b1, b7, bd, bp], f"{p}.concat")


def _module_d(net: CNN, x: Tensor, p: str) -> Tensor:
    b3 = net.conv_bn(net.conv_bn(x, f"{p}.branch3x3_1", 192, 1), f"{p}.branch3x3_2", 320, 3, stride=2)
    b7 = net.conv_bn(x, f"{p}.branch7x7x3_1", 192, 1)
    b7 = net.conv_bn(b7, f"{p}.branch7x7x3_2", 192, (1, 7), pad=(0, 3))
    b7 = net.conv_bn(b7, f"{p}.branch7x7x3_3", 192, (7, 1), pad=(3, 0))
    b7 = net.conv_bn(b7, f"{p}.branch7x7x3_4", 192, 3, stride=2)
    return net.concat([b3, b7, net.pool(x, f"{p}.maxpool", 3, 2)], f"{p}.concat")


def _split_1x3_3x1(net: CNN, x: Tensor, p: str) -> list[Tensor]:
    return [net.conv_bn(x, f"{p}a", 384, (1, 3), pad=(0, 1)), net.conv_bn(x, f"{p}b", 384, (3, 1), pad=(1, 0))]


def _module_e(net: CNN, x: Tensor, p: str) -> Tensor:
    b1 = net.conv_bn(x, f"{p}.branch1x1", 320, 1)
    b3 = _split_1x3_3x1(net, net.conv_bn(x, f"{p}.branch3x3_1", 384, 1), f"{p}.branch3x3_2")
    bd = net.conv_bn(net.conv_bn(x, f"{p}.branch3x3dbl_1", 448, 1), f"{p}.branch3x3dbl_2", 384, 3, pad=1)
    bd = _split_1x3_3x1(net, bd, f"{p}.branch3x3dbl_3")
    bp = net.conv_bn(net.pool(x, f"{p}.avgpool", 3, 1, pad=1), f"{p}.branch_pool", 192, 1)
    return net.concat([b1, *b3, *bd, bp], f"{p}.concat")


def inception_v3(batch: int = 1, *, dtype: str = "fp16", granularity: str = "layer", image: int = 299) -> OpGraph:
    net = CNN("inceptionv3", batch, dtype)
    x = net.conv_bn(Tensor(None, 3, image, image), "Conv2d_1a_3x3", 32, 3, stride=2)
    x = net.conv_bn(x, "Conv2d_2a_3x3", 32, 3)
    x = net.conv_bn(x, "Conv2d_2b_3x3", 64, 3, pad=1)
    x = net.pool(x, "maxpool1", 3, 2)
    x = net.conv_bn(x, "Conv2d_3b_1x1", 80, 1)
    x = net.conv_bn(x, "Conv2d_4a_3x3", 192, 3)
    x = net.pool(x, "maxpool2", 3, 2)
    for name, features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
        x = _module_a(net, x, name, features)
    x = _module_b(net, x, "Mixed_6a")
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        x = _module_c(net, x, name, c7)
    x = _module_d(net, x, "Mixed_7a")
    x = _module_e(net, x, "Mixed_7b")
    x = _module_e(net, x, "Mixed_7c")
    x = net.global_pool(x, "avgpool")
    net.fc(x, "fc", 1000)
    return net.graph.at(granularity)
