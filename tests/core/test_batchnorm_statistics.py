"""BatchNorm statistics re-estimated on a split, and accuracy with each batch's own statistics:
checked against statistics and predictions computed by hand."""
import torch
from torch import nn

from lakt.core.robustness import batch_statistics_accuracy, recalibrated


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_recalibrated_statistics_are_the_average_of_the_batches_and_the_weights_stay():
    net = _net()
    net[1].running_mean.fill_(5.0)
    net[1].running_var.fill_(9.0)
    x, y = torch.randn(129, 3) * 2 + 1, torch.randint(0, 2, (129,))
    twin = recalibrated(net, (x, y), batch_size=64)
    h = net[0](x).detach()[torch.randperm(129, generator=torch.Generator().manual_seed(0))]
    # batches 0:64 and 64:129 of the seeded order (the last single image joins the batch before);
    # unbiased variance per batch
    parts = [h[:64], h[64:]]
    mean = torch.stack([p.mean(0) for p in parts]).mean(0)
    var = torch.stack([p.var(0, unbiased=True) for p in parts]).mean(0)
    assert torch.allclose(twin[1].running_mean, mean, atol=1e-6)
    assert torch.allclose(twin[1].running_var, var, atol=1e-5)
    assert not twin.training and twin[1].momentum == net[1].momentum
    assert torch.equal(net[1].running_mean, torch.full((4,), 5.0))       # the original is untouched
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), twin.parameters()))


def test_batch_statistics_accuracy_normalises_each_batch_by_itself():
    net = _net().eval()
    net[1].running_mean.fill_(100.0)        # running statistics that would wreck eval mode
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    by_hand, order = 0, torch.randperm(10, generator=torch.Generator().manual_seed(3))
    for part in (order[0:4], order[4:8], order[8:10]):
        h = net[0](x[part])
        h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + net[1].eps) * net[1].weight + net[1].bias
        by_hand += (net[3](torch.relu(h)).argmax(1) == y[part]).sum().item()
    assert batch_statistics_accuracy(net, (x, y), batch_size=4, seed=3) == 100.0 * by_hand / 10
    assert not net.training and net[1].running_mean[0] == 100.0           # nothing of the model changed
