"""ResNet-50 (He et al., CVPR 2016, table 1) as an operator graph.

The v1.5 variant (stride on the 3x3 convolution of each down-sampling
bottleneck, as in torchvision and MLPerf): a 7x7 stem, four stages of
[3, 4, 6, 3] bottlenecks of widths 64, 128, 256, 512 (expansion 4), global
average pooling and a 1000-way classifier, on 224x224 images.  About
4.1 GMACs (8.2 GFLOPs) and 25.6 M parameters per image.
"""

from __future__ import annotations

from pipesim.workloads.cnn import CNN, Tensor
from pipesim.workloads.opgraph import OpGraph

__all__ = ["resnet50"]

STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


def resnet50(batch: int = 1, *, dtype: str = "fp16", granularity: str = "layer", image: int = 224) -> OpGraph:
    net = CNN("resnet50", batch, dtype)
    x = net.conv_bn(Tensor(None, 3, image, image), "conv1", 64, 7, stride=2, pad=3)
    x = net.pool(x, "maxpool", 3, 2, pad=1)
    for s, (width, blocks, stride) in enumerate(STAGES, start=1):
        for b in range(blocks):
            p, step = f"layer{s}.{b}", stride if b == 0 else 1
            y = net.conv_bn(x, f"{p}.conv1", width, 1)
            y = net.conv_bn(y, f"{p}.conv2", width, 3, stride=step, pad=1)
            y = net.conv_bn(y, f"{p}.conv3", 4 * width, 1, relu=False)
            shortcut = x if step == 1 and x.c == 4 * width else net.conv_bn(
                x, f"{p}.downsample", 4 * width, 1, stride=step, relu=False
            )
            x = net.add_relu(y, shortcut, f"{p}.add")
    x = net.global_pool(x, "avgpool")
    net.fc(x, "fc", 1000)
    return net.graph.at(granularity)
