"""The SR architectures: output shapes, parameter counts against the papers, checkpoint names, CSD width slicing,
discriminators and the receptive-field radii the tiled engine relies on."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F
from tolerances import NET_ABS
from torch import nn

from sr_cli.families.compact import compact_radius
from sr_cli.families.edsr import edsr_radius, mdsr_radius
from sr_cli.families.espcn import espcn_radius
from sr_cli.families.esrgan import rrdbnet_radius
from sr_cli.families.fsrcnn import fsrcnn_radius
from sr_cli.families.srcnn import srcnn_radius
from sr_cli.families.srresnet import msrresnet_radius, srresnet_radius
from sr_cli.models import (
    CSDEDSR,
    EDSR,
    ESPCN,
    FSRCNN,
    MDSR,
    SRCNN,
    MSRResNet,
    RRDBNet,
    SRGANDiscriminator,
    SRResNet,
    SRVGGNetCompact,
    VGGStyleDiscriminator,
    slice_state_dict,
)

SCALES = (2, 3, 4)

# Small members of each family (same code paths, few channels/blocks) so forward passes stay fast on a CPU.
SMALL: dict[str, tuple[Callable[[int], nn.Module], int]] = {
    "fsrcnn": (lambda s: FSRCNN(s), 1),
    "espcn": (lambda s: ESPCN(s), 1),
    "srresnet": (lambda s: SRResNet(s, n_feats=8, n_blocks=2), 3),
    "srresnet-nobn": (lambda s: SRResNet(s, n_feats=8, n_blocks=2, bn=False), 3),
    "edsr": (lambda s: EDSR(s, n_blocks=2, n_feats=16), 3),
    "mdsr": (lambda s: _mdsr(s, n_blocks=2, n_feats=16), 3),
    "csd": (lambda s: CSDEDSR(s, n_blocks=2, n_feats=16), 3),
    "rrdbnet": (lambda s: RRDBNet(s, num_feat=8, num_block=1, num_grow_ch=4), 3),
    "msrresnet": (lambda s: MSRResNet(s, n_feats=8, n_blocks=2), 3),
    "compact": (lambda s: SRVGGNetCompact(s, num_feat=8, num_conv=3), 3),
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add synchronisation (seconds per test on a loaded 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mdsr(scale: int, **kwargs: int) -> MDSR:
    net = MDSR(**kwargs)
    net.set_scale(scale)
    return net


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta(build: Callable[[], nn.Module]) -> nn.Module:
    """Build on the meta device: shapes and counts without allocating or initialising weights."""
    with torch.device("meta"):
        return build()


def millions(n: int, digits: int = 1) -> float:
    return round(n / 1e6, digits)


# --- shapes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("size", [(12, 10), (11, 7)])
def test_output_is_scale_times_input(name: str, scale: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    build, channels = SMALL[name]
    model = build(scale).eval()
    x = torch.rand(2, channels, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, channels, size[0] * scale, size[1] * scale)
    assert torch.isfinite(y).all()


def test_srcnn_keeps_size() -> None:
    x = torch.rand(1, 1, 13, 9)
    with torch.no_grad():
        assert SRCNN()(x).shape == (1, 1, 13, 9)
        assert SRCNN(num_channels=3)(torch.rand(1, 3, 7, 8)).shape == (1, 3, 7, 8)


@pytest.mark.parametrize("build", [lambda: FSRCNN(5), lambda: ESPCN(8), lambda: SRResNet(1), lambda: EDSR(6),
                                   lambda: MDSR(n_blocks=1, scales=(2, 5)), lambda: CSDEDSR(8, n_blocks=1),
                                   lambda: RRDBNet(1, num_block=1), lambda: SRVGGNetCompact(8, num_conv=1)])
def test_unsupported_scale_is_value_error(build: Callable[[], nn.Module]) -> None:
    with pytest.raises(ValueError, match="unsupported scale"):
        meta(build)


# --- parameter counts -----------------------------------------------------------------------------------------


def test_srcnn_params_exact() -> None:
    assert n_params(SRCNN()) == 8129


@pytest.mark.parametrize("scale", SCALES)
def test_fsrcnn_params(scale: int) -> None:
    model = FSRCNN(scale)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    assert weights == 12464  # the paper counts convolution weights only
    assert n_params(model) == 12464 + 173 + 172  # + biases + per-channel PReLU slopes


@pytest.mark.parametrize("scale", SCALES)
def test_fsrcnn_runs_its_deconvolution_as_a_subpixel_convolution(scale: int) -> None:
    """The same sums as the checkpoints' 9x9 stride-s transposed convolution (which stays the parameter), at every
    output phase and at the borders, odd sizes included."""
    torch.manual_seed(scale)
    model = FSRCNN(scale).eval()
    nn.init.normal_(model.last_part.weight, std=0.1)  # the paper's N(0, 0.001) would hide errors in rounding
    nn.init.normal_(model.last_part.bias, std=0.1)
    x = torch.rand(2, 1, 13, 8)
    with torch.no_grad():
        features = model.mid_part(model.first_part(x))
        reference = F.conv_transpose2d(features, model.last_part.weight, model.last_part.bias, stride=scale,
                                       padding=4, output_padding=scale - 1)
        out = model(x)
    assert out.shape == reference.shape == (2, 1, 13 * scale, 8 * scale)
    assert (out - reference).abs().max().item() < NET_ABS


@pytest.mark.parametrize(("scale", "expected"), [(2, 21284), (3, 22729), (4, 24752)])
def test_espcn_params_exact(scale: int, expected: int) -> None:
    assert n_params(ESPCN(scale)) == expected


def test_srresnet_params() -> None:
    model = meta(lambda: SRResNet(4))
    assert n_params(model) == 1_549_462
    assert millions(n_params(model)) == 1.5
    bns = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert bns == 2 * 16 + 1
    assert not any(isinstance(m, nn.BatchNorm2d) for m in meta(lambda: SRResNet(4, bn=False)).modules())


@pytest.mark.parametrize(("scale", "paper"), [(2, 1.37), (3, 1.55), (4, 1.52)])
def test_edsr_baseline_params(scale: int, paper: float) -> None:
    assert millions(n_params(meta(lambda: EDSR(scale))), 2) == paper


def test_edsr_baseline_x2_params_exact() -> None:
    assert n_params(meta(lambda: EDSR(2))) == 1_369_859


@pytest.mark.parametrize(("scale", "paper"), [(2, 40.7), (3, 43.7), (4, 43.1)])
def test_edsr_large_params(scale: int, paper: float) -> None:
    assert millions(n_params(meta(lambda: EDSR(scale, 32, 256, 0.1)))) == paper


def test_mdsr_params() -> None:
    n = n_params(meta(MDSR))
    assert n == 7_953_987
    assert millions(n) == 8.0


def test_rrdbnet_params() -> None:
    n = n_params(RRDBNet(4))  # built on the CPU: its normal_ init would pull in torch._dynamo on meta
    assert n == 16_697_987  # BasicSR's RRDBNet_x4
    assert millions(n) == 16.7
    for scale in (2, 3):  # one upsampling stage: no conv_up2
        assert n_params(RRDBNet(scale)) == n - (64 * 64 * 9 + 64)


def test_compact_params() -> None:
    """realesr-general-x4v3 (64 × 32) and realesr-animevideov3 (64 × 16): conv 3→64 + PReLU (1,792 + 64),
    per body conv 64→64 + PReLU (36,928 + 64), conv 64→48 (27,696)."""
    assert n_params(meta(lambda: SRVGGNetCompact(4))) == 1_856 + 32 * 36_992 + 27_696 == 1_213_296
    assert n_params(meta(lambda: SRVGGNetCompact(4, num_conv=16))) == 621_424
    assert n_params(meta(lambda: SRVGGNetCompact(2))) == 1_213_296 - 27_696 + (64 * 12 * 9 + 12)


@pytest.mark.parametrize("scale", SCALES)
def test_csd_active_params(scale: int) -> None:
    csd = meta(lambda: CSDEDSR(scale))
    assert csd.active_params(1.0) == n_params(csd) == n_params(meta(lambda: EDSR(scale, 32, 256, 0.1)))
    assert csd.active_params(0.25) == n_params(meta(lambda: EDSR(scale, 32, 64, 0.1)))
    if scale == 4:
        assert csd.active_params(0.25) == 2_699_267
        assert millions(csd.active_params(0.25)) == 2.7
        assert round(n_params(csd) / csd.active_params(0.25)) == 16


# --- checkpoint names -----------------------------------------------------------------------------------------


def _conv_keys(*names: str) -> set[str]:
    return {f"{n}.{k}" for n in names for k in ("weight", "bias")}


def test_edsr_state_dict_names() -> None:
    keys = set(meta(lambda: EDSR(4)).state_dict())
    blocks = [f"body.{i}.body.{j}" for i in range(16) for j in (0, 2)]
    assert keys == _conv_keys("sub_mean", "add_mean", "head.0", *blocks, "body.16", "tail.0.0", "tail.0.2",
                              "tail.1")
    x3 = set(meta(lambda: EDSR(3)).state_dict())
    assert {k for k in x3 if k.startswith("tail.")} == _conv_keys("tail.0.0", "tail.1")


def test_mdsr_state_dict_names() -> None:
    keys = set(meta(lambda: MDSR(n_blocks=2)).state_dict())
    pre = [f"pre_process.{s}.{b}.body.{j}" for s in range(3) for b in range(2) for j in (0, 2)]
    body = [f"body.{i}.body.{j}" for i in range(2) for j in (0, 2)]
    ups = ["upsample.0.0", "upsample.1.0", "upsample.2.0", "upsample.2.2"]
    assert keys == _conv_keys("sub_mean", "add_mean", "head.0", *pre, *body, "body.2", *ups, "tail.0")
    model = meta(lambda: MDSR(n_blocks=2))
    assert model.pre_process[0][0].body[0].kernel_size == (5, 5)


def test_csd_state_dict_names() -> None:
    keys = set(meta(lambda: CSDEDSR(4, n_blocks=2)).state_dict())
    body = [f"body.{i}.conv{j}" for i in range(2) for j in (1, 2)]
    assert keys == _conv_keys("sub_mean", "add_mean", "head", *body, "body_conv", "upsampler.blocks.0",
                              "upsampler.blocks.1", "tail_conv")


def test_rrdbnet_state_dict_names() -> None:
    keys = set(RRDBNet(4, num_feat=8, num_block=2, num_grow_ch=4).state_dict())
    body = [f"body.{i}.rdb{r}.conv{c}" for i in range(2) for r in (1, 2, 3) for c in range(1, 6)]
    assert keys == _conv_keys("conv_first", *body, "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")
    assert "conv_up2.weight" not in RRDBNet(2, num_feat=8, num_block=1, num_grow_ch=4).state_dict()


def test_rrdbnet_unshuffle_is_basicsr_x2_layout() -> None:
    """unshuffle 2 at x2: conv_first takes 12 channels and two ×2 stages follow; odd sizes still give 2× the input."""
    torch.manual_seed(0)
    model = RRDBNet(2, num_feat=8, num_block=1, num_grow_ch=4, unshuffle=2).eval()
    state = model.state_dict()
    assert state["conv_first.weight"].shape == (8, 12, 3, 3) and "conv_up2.weight" in state
    with torch.no_grad():
        for h, w in ((6, 8), (7, 9), (1, 4)):
            assert model(torch.rand(1, 3, h, w)).shape == (1, 3, 2 * h, 2 * w)
    with pytest.raises(ValueError, match="unshuffle 2 at x4: the unshuffled input is upsampled x4"):
        RRDBNet(4, num_block=1, unshuffle=2)


def test_compact_state_dict_names_and_nearest_skip() -> None:
    """Real-ESRGAN's names: body.{2k} convolutions, body.{2k+1} PReLU slopes, the last conv to 3·scale².
    With every parameter zero, the output is the nearest-neighbour upscaled input exactly."""
    model = SRVGGNetCompact(3, num_feat=8, num_conv=2)
    state = model.state_dict()
    assert set(state) == _conv_keys("body.0", "body.2", "body.4", "body.6") | {"body.1.weight", "body.3.weight",
                                                                                 "body.5.weight"}
    assert state["body.1.weight"].shape == (8,) and state["body.6.weight"].shape == (27, 8, 3, 3)
    for p in model.parameters():
        nn.init.zeros_(p)
    x = torch.rand(1, 3, 4, 5)
    with torch.no_grad():
        assert torch.equal(model(x), x.repeat_interleave(3, -2).repeat_interleave(3, -1))


def test_vgg_discriminator_names_and_shapes() -> None:
    sd = meta(lambda: VGGStyleDiscriminator()).state_dict()
    convs = [f"conv{i}_{j}" for i in range(5) for j in (0, 1)]
    assert {k.rsplit(".", 1)[0] for k in sd} == {*convs, *(f"bn{i}_{j}" for i in range(5) for j in (0, 1)
                                                          if (i, j) != (0, 0)), "linear1", "linear2"}
    assert sd["conv3_0.weight"].shape == (512, 256, 3, 3)
    assert sd["conv0_1.weight"].shape == (64, 64, 4, 4)
    assert sd["linear1.weight"].shape == (100, 512 * 16)
    assert "conv5_1.weight" in meta(lambda: VGGStyleDiscriminator(input_size=256)).state_dict()


def test_mean_shift_is_fixed_buffer() -> None:
    model = EDSR(2, n_blocks=1, n_feats=4)
    assert "sub_mean.weight" not in dict(model.named_parameters())
    assert torch.equal(model.sub_mean.bias, -torch.tensor([0.4488, 0.4371, 0.4040]))
    assert torch.equal(model.add_mean.weight.flatten(1), torch.eye(3))
    for p in model.parameters():  # with every parameter zero, the output is the mean colour
        nn.init.zeros_(p)
    y = model(torch.rand(1, 3, 3, 4))
    assert torch.allclose(y, torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1).expand(1, 3, 6, 8))


def test_edsr_rejects_mean_of_wrong_length() -> None:
    with pytest.raises(ValueError, match="rgb_mean"):
        EDSR(2, n_blocks=1, n_feats=4, num_channels=1)


# --- CSD width switching --------------------------------------------------------------------------------------


def _csd_matches_dense(scale: int, n_blocks: int, n_feats: int, width: float) -> float:
    torch.manual_seed(scale)
    csd = CSDEDSR(scale, n_blocks=n_blocks, n_feats=n_feats).eval()  # PyTorch's init randomises biases too
    csd.set_width(width)
    dense = EDSR(scale, n_blocks, int(n_feats * width), 0.1).eval()
    dense.load_state_dict(slice_state_dict(csd.state_dict(), width), strict=True)
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        return (csd(x) - dense(x)).abs().max().item()


def test_csd_quarter_width_equals_dense_edsr() -> None:
    """The published student: the 32 × 256 teacher at width 0.25 is EDSR 32 × 64 with sliced weights."""
    assert _csd_matches_dense(4, 32, 256, 0.25) < NET_ABS


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("width", [0.5, 1.0, 0.3])
def test_csd_width_equals_dense_edsr(scale: int, width: float) -> None:
    assert _csd_matches_dense(scale, 2, 16, width) < NET_ABS


def test_csd_widths_differ_and_switch_back() -> None:
    torch.manual_seed(0)
    csd = CSDEDSR(2, n_blocks=1, n_feats=16).eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        full = csd(x)
        csd.set_width(0.5)
        half = csd(x)
        csd.set_width(1.0)
        assert torch.equal(csd(x), full)
    assert (full - half).abs().max() > 1e-4


@pytest.mark.parametrize("width", [0.0, -0.25, 1.5, 0.01])
def test_set_width_validation(width: float) -> None:
    csd = meta(lambda: CSDEDSR(2, n_blocks=1, n_feats=64))
    with pytest.raises(ValueError, match="width"):
        csd.set_width(width)
    with pytest.raises(ValueError, match="width"):
        slice_state_dict(csd.state_dict(), width)


# --- MDSR scale switching -------------------------------------------------------------------------------------


def test_mdsr_set_scale() -> None:
    torch.manual_seed(0)
    model = MDSR(n_blocks=1, n_feats=8).eval()
    x = torch.rand(1, 3, 5, 7)
    assert model.scale == 2
    with torch.no_grad():
        for scale in (4, 3, 2):
            model.set_scale(scale)
            assert model(x).shape == (1, 3, 5 * scale, 7 * scale)
    with pytest.raises(ValueError, match="unsupported scale"):
        model.set_scale(8)


# --- discriminators -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 24, 96])
def test_srgan_discriminator_logit_shape(size: int) -> None:
    torch.manual_seed(0)
    d = SRGANDiscriminator(n_feats=8)
    assert d(torch.rand(2, 3, size, size)).shape == (2, 1)


def test_srgan_discriminator_paper_layout() -> None:
    d = meta(SRGANDiscriminator)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 7
    assert [m.out_features for m in d.modules() if isinstance(m, nn.Linear)] == [1024, 1]


@pytest.mark.parametrize("size", [128, 256])
def test_vgg_discriminator_logit_shape(size: int) -> None:
    torch.manual_seed(0)
    d = VGGStyleDiscriminator(num_feat=4, input_size=size)
    assert d(torch.rand(2, 3, size, size)).shape == (2, 1)
    with pytest.raises(ValueError, match="patches"):
        d(torch.rand(2, 3, size // 2, size // 2))


def test_vgg_discriminator_rejects_other_sizes() -> None:
    with pytest.raises(ValueError, match="input_size"):
        VGGStyleDiscriminator(input_size=96)


# --- receptive fields -----------------------------------------------------------------------------------------


def measured_radius(model: nn.Module, channels: int, scale: int, size: int) -> int:
    """How far (LR pixels) the input gradient of one LR pixel's s×s output block reaches, in any direction."""
    torch.manual_seed(1)
    model = model.double().eval()
    x = torch.randn(1, channels, size, size, dtype=torch.float64, requires_grad=True)
    c = size // 2
    model(x)[..., c * scale:(c + 1) * scale, c * scale:(c + 1) * scale].sum().backward()
    reach = x.grad.abs().sum((0, 1)) > 0
    rows = reach.any(1).nonzero().flatten()
    cols = reach.any(0).nonzero().flatten()
    assert rows.min() > 0 and cols.min() > 0, "input too small to see the whole receptive field"
    return int(max(c - rows.min(), rows.max() - c, c - cols.min(), cols.max() - c))


# The radius formulas (torch-free, beside each family's specs) for the SMALL members; csd's is EDSR's.
RADIUS_CASES: dict[str, Callable[[int], int]] = {
    "fsrcnn": fsrcnn_radius,
    "espcn": lambda s: espcn_radius(),
    "srresnet": lambda s: srresnet_radius(s, n_blocks=2),
    "srresnet-nobn": lambda s: srresnet_radius(s, n_blocks=2),
    "edsr": lambda s: edsr_radius(s, n_blocks=2),
    "mdsr": lambda s: mdsr_radius(s, n_blocks=2),
    "csd": lambda s: edsr_radius(s, n_blocks=2),
    "rrdbnet": lambda s: rrdbnet_radius(s, num_block=1),
    "msrresnet": lambda s: msrresnet_radius(s, n_blocks=2),
    "compact": lambda s: compact_radius(num_conv=3),
}


@pytest.mark.parametrize("name", list(RADIUS_CASES))
@pytest.mark.parametrize("scale", SCALES)
def test_receptive_radius_is_exact(name: str, scale: int) -> None:
    build, channels = SMALL[name]
    radius = RADIUS_CASES[name](scale)
    assert measured_radius(build(scale), channels, scale, 2 * radius + 5) == radius


def test_unshuffled_rrdbnet_receptive_radius_is_exact() -> None:
    """BasicSR's x2 RRDBNet (unshuffle 2): 2·17 cells' pixels + 3 after the first ×2 stage + 1 for the cell."""
    radius = rrdbnet_radius(2, num_block=1, unshuffle=2)
    assert radius == 38
    model = RRDBNet(2, num_feat=8, num_block=1, num_grow_ch=4, unshuffle=2)
    for size in (2 * radius + 5, 2 * radius + 6):  # the centre pixel at the end and at the start of its cell
        assert measured_radius(model, 3, 2, size) == radius


def test_srcnn_receptive_radius_is_exact() -> None:
    assert measured_radius(SRCNN(), 1, 1, 17) == srcnn_radius() == 6


@pytest.mark.parametrize(("scale", "expected"), [(2, 36), (3, 36), (4, 36)])
def test_default_receptive_radii(scale: int, expected: int) -> None:
    """The figures the registry's tile overlaps must cover, at the published depths."""
    assert edsr_radius(scale) == expected
    assert edsr_radius(scale, 32) == 68  # edsr-large, csd
    assert mdsr_radius(scale) == 172
    assert srresnet_radius(scale) == 40
    assert rrdbnet_radius(scale) == (348 if scale == 3 else 349)
    assert rrdbnet_radius(2, unshuffle=2) == 698  # RealESRGAN_x2plus
    assert compact_radius() == 34 and compact_radius(16) == 18
    assert fsrcnn_radius(scale) == (7 if scale == 4 else 8)
    assert espcn_radius() == 4
