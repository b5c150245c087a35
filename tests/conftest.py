"""Shared fixtures: small float64 nets and seeded inputs for exact comparisons."""
import pytest
import torch

from lakt.core import models


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny_vgg():
    """A width-1/8 VGG-4 in float64, eval mode, with non-trivial BatchNorm statistics."""
    net = models.vgg4(num_classes=10, width=0.125, in_channels=3).double()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny networks: on a busy shared CPU a thread pool's
    spinning makes each small op far slower than doing it alone."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
