"""VGG-9 / VGG-4 exactly as the supplementary describes them."""
import pytest
import torch
from torch import nn

from lakt.core import models
from lakt.core.errors import LaktError


def conv_channels(net):
    return [m.out_channels for m in net.features if isinstance(m, nn.Conv2d)]


def test_parameter_counts_match_the_supplementary():
    # 10 classes, conv biases and BatchNorm affine parameters included.
    assert models.count_parameters(models.vgg9()) == 9_231_114
    assert models.count_parameters(models.vgg4()) == 672_522


def test_layer_sequence_vgg9():
    net = models.vgg9()
    kinds = ["M" if isinstance(m, nn.MaxPool2d) else type(m).__name__ for m in net.features]
    blocks = " ".join(kinds).replace("Conv2d BatchNorm2d ReLU", "C").split()
    assert blocks == ["C", "M", "C", "M", "C", "C", "M", "C", "C", "M", "C", "C", "M"]
    assert conv_channels(net) == [64, 128, 256, 256, 512, 512, 512, 512]
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) for c in convs)
    pools = [m for m in net.features if isinstance(m, nn.MaxPool2d)]
    assert all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    assert isinstance(net.pool, nn.AdaptiveAvgPool2d) and net.classifier.in_features == 512


def test_layer_sequence_vgg4_and_output_shape():
    net = models.vgg4(num_classes=100)
    assert conv_channels(net) == [64, 128, 512]
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.features) == 3
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_options_width_bias_batchnorm_activation():
    net = models.vgg4(width=0.25, in_channels=1, bias=False, batch_norm=False, activation="hardtanh")
    assert conv_channels(net) == [16, 32, 128]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert all(m.bias is None for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert any(isinstance(m, nn.Hardtanh) for m in net.modules())
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("kwargs", [{"width": 0}, {"width": -1}, {"activation": "gelu"}])
def test_bad_options_are_user_errors(kwargs):
    with pytest.raises(LaktError):
        models.vgg9(**kwargs)


def test_build_by_name():
    assert models.count_parameters(models.build("vgg4", 10)) == 672_522
    with pytest.raises(LaktError, match="unknown model"):
        models.build("resnet", 10)
