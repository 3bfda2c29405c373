"""Training losses on tiny tensors against hand computations; the VGG19 layout and its weights file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from sr_cli.download import Unreachable
from sr_cli.errors import DownloadError, UsageError, WeightsError
from sr_cli.train import vgg
from sr_cli.train.losses import Adversarial, Criterion, Perceptual, Term, charbonnier, parse_loss
from testdata import VGG_FULL, VGG_TO_RELU2_2, needs_shared
from tolerances import LOSS_REL



def test_parse_loss_expression() -> None:
    assert parse_loss("1*l1+0.006*perceptual+0.001*gan") == [
        Term(1.0, "l1"), Term(0.006, "perceptual"), Term(0.001, "gan")]
    assert parse_loss(" mse + 2e-3 * charbonnier ") == [Term(1.0, "mse"), Term(0.002, "charbonnier")]


@pytest.mark.parametrize(("expr", "message"), [
    ("1*l1+0.1*ssim", "unknown loss term 'ssim'"),
    ("l1+l1", "appears twice"),
    ("0*l1", "positive weight"),
    ("1*+l1", "cannot read loss term"),
    ("", "cannot read loss term"),
])
def test_parse_loss_errors(expr: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_loss(expr)


SR = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])
HR = torch.zeros(1, 1, 2, 2)


def test_pixel_losses_by_hand() -> None:
    total, terms = Criterion(parse_loss("2*l1+0.5*mse+charbonnier"))(SR, HR)
    assert terms["l1"].item() == pytest.approx((0 + 0.5 + 1 + 0.25) / 4)  # 0.4375
    assert terms["mse"].item() == pytest.approx((0 + 0.25 + 1 + 0.0625) / 4)  # 0.328125
    expected_c = sum(math.sqrt(d * d + 1e-6) for d in (0, 0.5, 1, 0.25)) / 4
    assert terms["charbonnier"].item() == pytest.approx(expected_c, rel=LOSS_REL)
    assert total.item() == pytest.approx(2 * 0.4375 + 0.5 * 0.328125 + expected_c, rel=LOSS_REL)
    assert charbonnier(HR, HR).item() == pytest.approx(1e-3)


def _tiny_features() -> vgg.VGGFeatures:
    torch.manual_seed(0)
    return vgg.VGGFeatures(vgg.vgg19_features((4, 4, "M", 6)), ["relu2_1"])


def test_perceptual_on_a_tiny_random_feature_net() -> None:
    features = _tiny_features()
    sr = torch.rand(2, 3, 8, 8, requires_grad=True)
    hr = torch.rand(2, 3, 8, 8)
    loss = Perceptual(features, "relu2_1")(sr, hr)

    net = features.net  # conv1_1 relu1_1 conv1_2 relu1_2 pool1 conv2_1 relu2_1
    mean, std = torch.tensor(vgg.MEAN).view(1, 3, 1, 1), torch.tensor(vgg.STD).view(1, 3, 1, 1)

    def phi(x: torch.Tensor) -> torch.Tensor:
        x = (x - mean) / std
        x = F.relu(net[2](F.relu(net[0](x))))
        return F.relu(net[5](F.max_pool2d(x, 2)))

    assert len(net) == 7
    assert loss.item() == pytest.approx((phi(sr) - phi(hr)).abs().mean().item(), rel=LOSS_REL)
    loss.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in features.parameters())
    # a Y image is seen as gray RGB
    y = torch.rand(1, 1, 8, 8)
    assert torch.equal(features(y)["relu2_1"], features(y.expand(-1, 3, -1, -1))["relu2_1"])


def test_vgg_layer_names_follow_torchvision_indices() -> None:
    assert vgg.LAYERS["conv1_1"] == 0 and vgg.LAYERS["relu1_1"] == 1 and vgg.LAYERS["pool1"] == 4
    assert vgg.LAYERS["relu2_1"] == 6 and vgg.LAYERS["conv5_4"] == 34 and vgg.LAYERS["relu5_4"] == 35
    convs = [i for i, m in enumerate(vgg.vgg19_features()) if isinstance(m, nn.Conv2d)]
    assert convs == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


@needs_shared(VGG_FULL)
def test_vgg_loads_the_shared_weights_file() -> None:
    features = vgg.load_vgg(["relu1_2", "conv5_4"], VGG_FULL)
    state = load_file(str(VGG_FULL))
    assert vgg.tensors_sha256(state) == vgg.VGG_TENSORS_SHA256
    cut = load_file(str(VGG_TO_RELU2_2))  # the repository's copy is the first four convolutions of this file
    assert sorted(cut) == [f"features.{i}.{p}" for i in (0, 2, 5, 7) for p in ("bias", "weight")]
    assert all(torch.equal(cut[k], state[k]) for k in cut)
    assert torch.equal(features.net[0].weight, state["features.0.weight"].float())
    out = features(torch.full((1, 3, 32, 32), 0.5))
    assert out["relu1_2"].shape == (1, 64, 32, 32) and out["conv5_4"].shape == (1, 512, 2, 2)
    assert out["relu1_2"].min() >= 0 and out["conv5_4"].min() < 0  # conv5_4 is before its ReLU


def test_vgg_file_cut_after_the_deepest_layer_serves_up_to_that_layer() -> None:
    """tests/data holds VGG19 up to relu2_2 (the perceptual loss's layer in the tests): it loads for relu2_2
    and below, and is refused, naming a missing tensor, for a deeper layer."""
    state = load_file(str(VGG_TO_RELU2_2))
    features = vgg.load_vgg(["relu1_1", "relu2_2"], VGG_TO_RELU2_2)
    assert len(features.net) == vgg.LAYERS["relu2_2"] + 1
    assert torch.equal(features.net[7].weight, state["features.7.weight"].float())
    out = features(torch.full((1, 3, 8, 8), 0.5))
    assert out["relu1_1"].shape == (1, 64, 8, 8) and out["relu2_2"].shape == (1, 128, 4, 4)
    with pytest.raises(WeightsError, match=r"is not a VGG19 features file \(Missing key.*\"10\.weight\""):
        vgg.load_vgg(["relu3_1"], VGG_TO_RELU2_2)


def test_vgg_weights_offline_error_says_what_to_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRTOOL_DATA_DIR", str(tmp_path))

    def offline(url: str, dest: Path, sha256: str, size: int, *, quiet: bool = False) -> Path:
        raise Unreachable("example.org", "offline", url, dest.parent)

    monkeypatch.setattr(vgg, "download_file", offline)
    with pytest.raises(DownloadError) as err:
        vgg.vgg_weights_path()
    message = str(err.value)
    assert vgg.WHEEL_URL in message and str(tmp_path / "vgg19") in message and "--vgg-weights" in message
    with pytest.raises(DownloadError, match="VGG19 weights not found"):
        vgg.vgg_weights_path(download=False)
    cached = tmp_path / "vgg19" / vgg.VGG_FILE
    cached.write_bytes(b"x")
    assert vgg.vgg_weights_path() == cached


class Critic(nn.Module):
    """A 'discriminator' whose logit is the mean of its input times a learnable weight."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x.mean(dim=(1, 2, 3)).unsqueeze(1)


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_vanilla_gan_by_hand() -> None:
    adv = Adversarial(Critic(), "vanilla")
    sr = torch.tensor([0.1, 0.3]).view(2, 1, 1, 1)
    hr = torch.tensor([0.5, 0.9]).view(2, 1, 1, 1)
    fake, real = [0.2, 0.6], [1.0, 1.8]  # 2 * values
    g = -sum(_log_sigmoid(f) for f in fake) / 2
    d = -sum(_log_sigmoid(r) for r in real) / 2 - sum(_log_sigmoid(-f) for f in fake) / 2
    assert adv.generator_loss(sr, hr).item() == pytest.approx(g, rel=LOSS_REL)
    assert adv.discriminator_loss(sr, hr).item() == pytest.approx(d, rel=LOSS_REL)


def test_relativistic_gan_by_hand() -> None:
    adv = Adversarial(Critic(), "ragan")
    sr = torch.tensor([0.1, 0.3]).view(2, 1, 1, 1)
    hr = torch.tensor([0.5, 0.9]).view(2, 1, 1, 1)
    fake, real = [0.2, 0.6], [1.0, 1.8]
    mf, mr = sum(fake) / 2, sum(real) / 2
    rel_real = [r - mf for r in real]
    rel_fake = [f - mr for f in fake]
    # D: real should look more real than the average fake, fake less real than the average real
    d = (-sum(_log_sigmoid(x) for x in rel_real) / 2 - sum(_log_sigmoid(-x) for x in rel_fake) / 2) / 2
    # G: the opposite
    g = (-sum(_log_sigmoid(-x) for x in rel_real) / 2 - sum(_log_sigmoid(x) for x in rel_fake) / 2) / 2
    assert adv.discriminator_loss(sr, hr).item() == pytest.approx(d, rel=LOSS_REL)
    sr_g = sr.clone().requires_grad_(True)
    loss = adv.generator_loss(sr_g, hr)
    assert loss.item() == pytest.approx(g, rel=LOSS_REL)
    loss.backward()
    assert sr_g.grad.abs().sum() > 0 and adv.discriminator.w.grad is not None


def test_criterion_sums_gan_and_perceptual_with_weights() -> None:
    features = _tiny_features()
    adv = Adversarial(Critic(), "vanilla")
    sr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    total, terms = Criterion(parse_loss("1*l1+0.5*perceptual+0.01*gan"), Perceptual(features, "relu2_1"), adv)(sr, hr)
    assert set(terms) == {"l1", "perceptual", "gan"}
    expected = terms["l1"] + 0.5 * terms["perceptual"] + 0.01 * terms["gan"]
    assert total.item() == pytest.approx(expected.item(), rel=LOSS_REL)
    assert terms["gan"].item() == pytest.approx(adv.generator_loss(sr, hr).item(), rel=LOSS_REL)
    with pytest.raises(UsageError, match="gan-type"):
        Adversarial(Critic(), "wgan")
