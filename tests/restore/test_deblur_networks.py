import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsi_deblur.restore.networks import ARCHITECTURES, DBMIDNet, FastDeblurNet, build_network, macs_per_pixel


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (130, 71)])
def test_any_input_size_comes_back_the_same_size(arch, shape):
    net = build_network(arch).eval()
    x = torch.rand(2, 3, *shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_untrained_residual_is_identity_when_tail_is_zero(arch):
    net = build_network(arch).eval()
    torch.nn.init.zeros_(net.tail.weight)
    torch.nn.init.zeros_(net.tail.bias)
    x = torch.rand(1, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x)


def test_fast_model_costs_at_most_a_tenth_of_dbmid():
    assert macs_per_pixel(FastDeblurNet()) <= macs_per_pixel(DBMIDNet()) / 10


def test_dbmid_follows_the_paper_layout():
    net = DBMIDNet()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and not isinstance(m, torch.nn.ConvTranspose2d)]
    ups = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert {m.out_channels for m in convs} >= {32, 64, 128}
    assert all(m.kernel_size == (3, 3) for m in convs + ups)
    assert sorted(m.stride[0] for m in convs if m.stride[0] > 1) == [2, 2]
    assert [m.stride[0] for m in ups] == [2, 2]


def test_macs_count_matches_a_hand_count():
    # conv 3->32 at full resolution: 3*32*9 MAC/px; nothing else.
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1))
    assert macs_per_pixel(net, size=64) == 3 * 32 * 9


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_few_training_steps_learn_to_undo_a_blur(arch):
    from skimage.data import immunohistochemistry

    torch.manual_seed(0)
    img = torch.from_numpy(immunohistochemistry()[:256, :256].astype(np.float32) / 255).permute(2, 0, 1)
    sharp = torch.stack([img[:, y:y + 48, x:x + 48] for y in (0, 100, 200) for x in (0, 100)])
    blurred = F.conv2d(F.pad(sharp, (2, 2, 0, 0), mode="replicate"), torch.ones(3, 1, 1, 5) / 5, groups=3)
    identity = F.mse_loss(blurred, sharp).item()
    net = build_network(arch)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(80):
        loss = F.mse_loss(net(blurred), sharp)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.85 * identity  # better than leaving the blur in
