import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsi_deblur.nets.dbmid import DBMIDNet
from wsi_deblur.nets.fast import FastDeblurNet
from wsi_deblur.nets.registry import RESTORER_ARCHITECTURES as ARCHITECTURES
from wsi_deblur.nets.runtime import build_network, macs_per_pixel

NETWORKS = [("dbmid", None), ("fast", None), ("fast", (32, 96, 96))]


@pytest.mark.parametrize(("arch", "widths"), NETWORKS)
@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (130, 71)])
def test_any_input_size_comes_back_the_same_size(arch, widths, shape):
    net = build_network(arch, {"widths": widths}).eval()
    x = torch.rand(2, 3, *shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape


@pytest.mark.parametrize(("arch", "widths"), NETWORKS)
def test_untrained_residual_is_identity_when_tail_is_zero(arch, widths):
    net = build_network(arch, {"widths": widths}).eval()
    torch.nn.init.zeros_(net.tail.weight)
    torch.nn.init.zeros_(net.tail.bias)
    x = torch.rand(1, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x)


@pytest.mark.parametrize("widths", [(32, 96), (32, 96, 96)])
def test_fast_model_costs_at_most_a_tenth_of_dbmid(widths):
    assert macs_per_pixel(FastDeblurNet(widths)) <= macs_per_pixel(DBMIDNet()) / 10


@pytest.mark.parametrize("directional", [False, True])
def test_two_level_weights_run_unchanged_in_a_three_level_network(directional):
    torch.manual_seed(1)
    two = FastDeblurNet((32, 96), directional=directional).eval()
    if directional:  # a direction that matters
        torch.nn.init.normal_(two.film.weight)
    three = FastDeblurNet((32, 96, 96), directional=directional).eval()
    result = three.load_state_dict(two.state_dict(), strict=False)
    assert sorted(result.missing_keys) == sorted(f"{m}.{p}" for m in ("down2", "deep", "up2") for p in ("weight", "bias"))
    x = torch.rand(2, 3, 64, 80)
    extra = (torch.tensor([5.0, 40.0]),) if directional else ()
    with torch.no_grad():
        torch.testing.assert_close(three(x, *extra), two(x, *extra), rtol=0, atol=0)
        torch.nn.init.normal_(three.up2.weight, std=0.1)  # once the third level has learnt, it counts
        assert (three(x, *extra) - two(x, *extra)).abs().max() > 1e-3


def test_fast_network_has_two_or_three_levels():
    with pytest.raises(ValueError, match="two or three levels"):
        FastDeblurNet((32,))


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
    told = (torch.tensor([[0.0, 5.0, 0.0]]).repeat(len(sharp), 1),) if arch == "bcr" else ()  # bcr: the PSF
    for _ in range(80):
        loss = F.mse_loss(net(blurred, *told), sharp)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.85 * identity, (loss.item(), identity)  # better than leaving the blur in


@pytest.mark.parametrize("name, kind", [("deblur_fast_defocus.safetensors", "restorer"),
                                        ("blur_classifier.safetensors", "classifier")])
def test_weights_with_nan_or_of_another_network_are_refused_naming_the_file(tmp_path, name, kind):
    """safetensors has no checksum: a damaged copy must fail loudly, never give a quiet verdict."""
    import torch
    from safetensors.torch import load_file, save_file

    from wsi_deblur.nets.files import read_config, shipped_dir
    from wsi_deblur.nets.runtime import network_from_weights

    source = shipped_dir() / name
    tensors = load_file(str(source))
    metadata = {"config": __import__("json").dumps(read_config(source)), "format": "pt"}
    first = next(k for k, v in tensors.items() if v.is_floating_point())
    save_file({**tensors, first: torch.full_like(tensors[first], float("nan"))}, str(tmp_path / name),
              metadata=metadata)
    with pytest.raises(ValueError, match=f"{name}: 1 tensor.* NaN"):
        network_from_weights(tmp_path / name, kind)
    save_file({k: v for k, v in tensors.items() if k != first}, str(tmp_path / "short.safetensors"), metadata=metadata)
    with pytest.raises(ValueError, match="short.safetensors: its tensors do not fit"):
        network_from_weights(tmp_path / "short.safetensors", kind)
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="garbage.safetensors: not a safetensors"):
        network_from_weights(tmp_path / "garbage.safetensors", kind)
