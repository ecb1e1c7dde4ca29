"""Models layer: the EDM-preconditioned digits UNet, per-seed sampling, FD_digits (the
Fréchet distance of docs/theory.md eq. (31) in a digits feature space), its real-data floor and FD_∞ (eq. (52)), the
offline Inception-FID message, seed parsing, the EDM pickle loader, the images bench, and no host sync on a GPU."""

import json
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from ersde_theory.cli import main
from ersde_theory.evaluation.image_metrics import FEATURES_PATH, DigitFD, inception_fid
from ersde_theory.evaluation.intervals import t_interval
from ersde_theory.models.checkpoints import UNET_PATH, load_digits_unet
from ersde_theory.models.edm import load_edm_network
from ersde_theory.models.loading import ImageModel, load_image_model
from ersde_theory.models.sampling import sample_images
from ersde_theory.models.unet import EDMDenoiser, UNetConfig
from ersde_theory.sample_job import parse_seeds

sklearn = pytest.importorskip("sklearn")

pytestmark = pytest.mark.usefixtures("one_thread")
from ersde_theory.datasets.digits import load_digits_tensor  # noqa: E402


@pytest.fixture(scope="module")
def digits_model():
    return load_digits_unet()


@pytest.fixture(scope="module")
def digits():
    return load_digits_tensor(torch.float64)[0]


@pytest.fixture(scope="module")
def fd():
    return DigitFD()


def test_edm_preconditioning_matches_its_closed_form():
    """D(x, σ) = c_skip x + c_out F(c_in x, ln σ / 4) with F(y, c) = c·y: D = (c_skip + c_out c_in ln σ/4) x."""
    m = EDMDenoiser(UNetConfig(sigma_data=0.7)).eval()
    m.net.forward = lambda y, c: y * c.reshape(-1, 1, 1, 1)
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    sig = torch.tensor([0.01, 1.0, 50.0], dtype=torch.float64)
    s, sd = sig.reshape(-1, 1, 1, 1), 0.7
    expect = (sd**2 / (s**2 + sd**2) + s * sd / (s**2 + sd**2) * torch.log(s) / 4) * x
    out = m(x, sig)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expect, rtol=1e-6, atol=1e-6)  # the network runs in float32


def test_shipped_weights_are_small_and_documented(digits_model, digits):
    for path in (UNET_PATH, FEATURES_PATH):
        assert path.stat().st_size < 10e6
        side = json.loads(path.with_suffix(".json").read_text())
        assert side["command"].startswith("python -m ersde_theory ") and "seed" in side
    side = json.loads(UNET_PATH.with_suffix(".json").read_text())
    from ersde_theory.models.train import eval_edm_loss

    assert eval_edm_loss(digits_model, digits.float()) == pytest.approx(side["eval_loss_ema"], rel=1e-3)
    assert json.loads(FEATURES_PATH.with_suffix(".json").read_text())["test_accuracy"] > 0.95


@pytest.mark.parametrize("sigma", [0.2, 0.5, 1.0])
def test_digits_denoiser_beats_the_best_linear_denoiser(digits_model, digits, sigma):
    """MSE of x_θ(x0 + σ n) against the Wiener (Gaussian-optimal linear) denoiser μ + Σ(Σ + σ²I)⁻¹(x − μ) of
    the digits' own mean and covariance: a learned denoiser of the data must be clearly better."""
    x0 = digits.reshape(len(digits), -1)
    mu, cov = x0.mean(0), torch.cov(x0.T)
    n = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x0 + sigma * n
    gain = cov @ torch.linalg.inv(cov + sigma**2 * torch.eye(64, dtype=torch.float64))
    lin = mu + (x - mu) @ gain.T
    den = digits_model(x.reshape(-1, 1, 8, 8), torch.full((len(x),), sigma, dtype=torch.float64)).reshape(len(x), -1)
    mse_net, mse_lin = ((den - x0) ** 2).mean(), ((lin - x0) ** 2).mean()
    assert mse_net < 0.8 * mse_lin, (float(mse_net), float(mse_lin))


def test_an_image_depends_only_on_its_seed(digits_model):
    im = ImageModel("digits", "ve", digits_model, digits_model.sample_shape)
    alone = sample_images(im, [11], steps=6)
    batch = sample_images(im, [10, 11, 12, 13], steps=6)
    torch.testing.assert_close(batch[1:2], alone, rtol=1e-5, atol=1e-5)
    assert (batch[0] - batch[1]).abs().max() > 0.1


def test_digits_samples_are_close_to_the_data_in_feature_space(digits_model, fd):
    """FD_digits of 400 samples at NFE 20 sits near the real-data floor at n = 400, far below the FD of the
    same digits with their pixels shuffled (a distribution with the right pixel histogram, wrong shapes)."""
    im = ImageModel("digits", "ve", digits_model, digits_model.sample_shape)
    x = sample_images(im, range(400), steps=20)
    floor_mean, floor_ci = t_interval(fd.real_floor(400, reps=6))
    real = load_digits_tensor()[0][:400]
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    shuffled = real.reshape(400, 64)[:, perm].reshape(400, 1, 8, 8)
    fd_samples, fd_shuffled = fd(x), fd(shuffled)
    assert fd_samples < 3 * floor_mean, (fd_samples, floor_mean)
    assert fd_shuffled > 10 * fd_samples, (fd_shuffled, fd_samples)


def test_fd_digits_of_real_digits_is_at_the_floor(fd, digits):
    """Random disjoint blocks of real digits (the file is ordered by writer: consecutive blocks are not)."""
    perm = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    vals = fd.blocks(digits[perm[:1500]], 3)
    floor, _ = t_interval(fd.real_floor(500, reps=6))
    assert np.all(vals < 2.5 * floor) and np.all(vals > 0)


def test_fd_digits_infinity_of_real_digits_covers_the_truth(fd, digits):
    """Real digits drawn with replacement have the reference feature moments (the covariance times 1796/1797: true
    distance ~1e-4). The interval over the blocks' FD_∞ (docs/theory.md eq. (52)) covers it; the one over FD_n lies
    a floor above it (the simulation in tests/evaluation/test_fd_infinity.py measures the coverage)."""
    x = digits[torch.randint(len(digits), (1000,), generator=torch.Generator().manual_seed(0))]
    (m, h), (m_n, h_n) = t_interval(fd.blocks_infinity(x, 4)), t_interval(fd.blocks(x, 4))
    assert abs(m) <= h < m_n and m_n - h_n > 0, (m, h, m_n, h_n)
    with pytest.raises(ValueError, match="blocks of at least 4"):
        fd.blocks_infinity(x[:15], 4)


def test_inception_fid_offline_says_how_to_provide_weights(monkeypatch, tmp_path):
    monkeypatch.delenv("ERSDE_INCEPTION_WEIGHTS", raising=False)
    imgs = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(FileNotFoundError, match="ERSDE_INCEPTION_WEIGHTS"):
        inception_fid(imgs, imgs)
    with pytest.raises(FileNotFoundError, match="does not exist.*--inception-weights"):
        inception_fid(imgs, imgs, weights=tmp_path / "missing.pth")


@pytest.mark.parametrize(
    "spec,expect", [("0-3", [0, 1, 2, 3]), ("7", [7]), ("5-6, 1,5", [1, 5, 6]), ("0-49999", list(range(50000)))]
)
def test_parse_seeds(spec, expect):
    assert parse_seeds(spec) == expect


@pytest.mark.parametrize("spec", ["", "a-b", "3-1", "1-2-3", "-4", "1,,2"])
def test_parse_seeds_rejects(spec):
    with pytest.raises(ValueError, match="seed range"):
        parse_seeds(spec)


def test_edm_pickle_loader(tmp_path, digits_model):
    """The real loading code on an offline pickle, and the error when the EDM modules are missing."""
    ok = tmp_path / "net.pkl"
    with open(ok, "wb") as f:
        pickle.dump({"ema": digits_model}, f)
    net = load_edm_network(ok)
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(net(x, torch.tensor([1.0, 2.0])), digits_model(x, torch.tensor([1.0, 2.0])))
    # a pickle whose class lives in EDM's torch_utils, absent here
    mod = types.ModuleType("torch_utils")
    sub = types.ModuleType("torch_utils.persistence")

    class Net(torch.nn.Module):
        pass

    Net.__module__, Net.__qualname__ = "torch_utils.persistence", "Net"
    sub.Net = Net
    sys.modules.update({"torch_utils": mod, "torch_utils.persistence": sub})
    bad = tmp_path / "edm.pkl"
    try:
        with open(bad, "wb") as f:
            pickle.dump({"ema": Net()}, f)
    finally:
        del sys.modules["torch_utils"], sys.modules["torch_utils.persistence"]
    with pytest.raises(ImportError, match="'torch_utils'.*NVlabs/edm"):
        load_edm_network(bad)
    with pytest.raises(FileNotFoundError):
        load_edm_network(tmp_path / "nope.pkl")


def test_bench_images_quick_writes_valid_results(tmp_path, capsys):
    from ersde_theory.studies.bench_images import solver_overhead

    assert main(["bench", "images", "--quick", "--no-speed", "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "bench_images.json").read_text())
    assert {r["sampler"] for r in res["rows"]} == {"ER-SDE-3 er_sde_5", "ER-SDE-1 ode (=DDIM)"}
    assert all(np.isfinite(r["fd"]) and r["fd"] > 0 and np.isfinite(r["ci95"]) for r in res["rows"])
    # FD_∞ (eq. (52)) needs halves larger than the 64 feature dimensions: the quick blocks of 64 report FD_n only
    assert all("fd_inf" not in r for r in res["rows"]) and res["feature_dim"] == 64
    md = (tmp_path / "bench_images.md").read_text()
    assert "FD_∞ NFE 10" not in md and "FD_∞ (eq. 52) is not reported: blocks of n = 64 leave halves of 32 ≤ 64" in md
    assert res["real_floor"]["fd"] > 0 and "NOT Inception-FID" in (tmp_path / "bench_images.md").read_text()
    sp = solver_overhead(load_image_model("digits"), steps=3, batch=8, reps=1, device=torch.device("cpu"))
    assert sp["model_seconds"] > 0 and sp["images_per_second"] > 0


def test_fd_infinity_only_where_its_interval_can_hold():
    """FeatureFD.blocks_infinity gives FD_∞ per block (eq. (52)) only for blocks of n with n/2 > D (64 for
    FD_digits): 2 blocks of 140 real digits give two values below their FD_n, 2 blocks of 128 give None."""
    fd = DigitFD()
    x = load_digits_tensor()[0]
    inf = fd.blocks_infinity(x[:280], 2)
    assert inf is not None and len(inf) == 2 and np.all(inf < fd.blocks(x[:280], 2))
    assert fd.blocks_infinity(x[:256], 2) is None


@pytest.mark.cuda
def test_no_host_sync_per_step_on_gpu():
    """Every step after the first model call runs under torch.cuda.set_sync_debug_mode('error')."""
    from ersde_theory import get_sigmas_karras, sample_er_sde

    model = load_digits_unet(device="cuda")
    gens = [torch.Generator(device="cuda").manual_seed(s) for s in range(16)]
    x = torch.stack([torch.randn(1, 8, 8, generator=g, device="cuda", dtype=torch.float64) for g in gens]) * 80.0
    sig = get_sigmas_karras(10, 0.002, 80.0)

    def arm(d):
        if d["i"] == 0:
            torch.cuda.set_sync_debug_mode("error")

    try:
        out = sample_er_sde(model, x, sig, generator=gens, callback=arm, check_finite="none", disable=True)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(out).all()
