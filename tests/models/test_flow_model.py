"""Models layer, the digits rectified-flow model: its preconditioning against the closed-form velocity of
Gaussian data, the shipped weights (size, sidecar, loss), its velocity at σ = 1 and its data predictions
against the best linear ones, its samples in feature space, the loader's objective checks, and the flow bench."""

import json

import numpy as np
import pytest
import torch

from ersde_theory.cli import main
from ersde_theory.datasets.digits import load_digits_tensor
from ersde_theory.evaluation.image_metrics import DigitFD
from ersde_theory.evaluation.intervals import t_interval
from ersde_theory.models.checkpoints import FLOW_UNET_PATH, UNET_PATH, load_digits_unet
from ersde_theory.models.loading import load_image_model
from ersde_theory.models.sampling import sample_images
from ersde_theory.models.train import eval_edm_loss
from ersde_theory.models.unet import EDMDenoiser, FlowVelocity, UNetConfig
from tests.helpers import assert_refused_before_writing

pytest.importorskip("sklearn")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def flow_model():
    return load_digits_unet(objective="flow")


@pytest.fixture(scope="module")
def digits():
    return load_digits_tensor(torch.float64)[0]


def test_untrained_flow_model_is_the_exact_velocity_of_gaussian_data():
    """The output convolution starts at zero (F = 0), so v_θ = c_skip x. For x_0 ~ N(0, σ_d² I) and
    x = (1 − σ) x_0 + σ ε the exact velocity is linear: E[ε − x_0 | x] = (σ − (1 − σ) σ_d²)/((1 − σ)² σ_d² + σ²) x
    (Gaussian conditioning: Cov(ε − x_0, x)/Var(x))."""
    sd = 0.6
    m = FlowVelocity(UNetConfig(sigma_data=sd, sigma_min=0.0, sigma_max=1.0)).eval()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sig = torch.tensor([0.0, 0.3, 0.9, 1.0], dtype=torch.float64)
    s = sig.reshape(-1, 1, 1, 1)
    cov_vx = s * 1.0 - (1 - s) * sd**2  # Cov(ε, σ ε) − Cov(x_0, α x_0)
    var_x = (1 - s) ** 2 * sd**2 + s**2
    out = m(x, sig)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, cov_vx / var_x * x, rtol=1e-6, atol=1e-6)


def test_flow_output_scale_makes_the_residual_target_unit_variance():
    """c_out² = Var(v) − c_skip² Var(x) = (1 + σ_d²) − Cov(v, x)²/Var(x): checked against a Monte Carlo
    estimate of Var(v − c_skip x) on Gaussian data through F(y, c) = 1 (so v_θ = c_skip x + c_out)."""
    sd, n = 0.75, 200_000
    m = FlowVelocity(UNetConfig(sigma_data=sd, sigma_min=0.0, sigma_max=1.0)).eval()
    m.net.forward = lambda y, c: torch.ones_like(y)
    g = torch.Generator().manual_seed(1)
    for sigma in (0.1, 0.5, 1.0):
        x0, eps = sd * torch.randn(n, 1, 1, 1, generator=g), torch.randn(n, 1, 1, 1, generator=g)
        x = (1 - sigma) * x0 + sigma * eps
        zero_x = m(torch.zeros(1, 1, 1, 1), sigma)  # = c_out (c_skip · 0 + c_out · 1)
        c_skip = float(m(torch.ones(1, 1, 1, 1), sigma) - zero_x)
        resid = (eps - x0) - c_skip * x
        assert float(zero_x) == pytest.approx(float(resid.std()), rel=0.01)


def test_shipped_flow_weights_are_small_documented_and_reproduce_their_loss(flow_model, digits):
    assert FLOW_UNET_PATH.stat().st_size < 2e6
    side = json.loads(FLOW_UNET_PATH.with_suffix(".json").read_text())
    assert side["command"].startswith("python -m ersde_theory train-digits --objective flow")
    assert side["objective"] == "flow" and "seed" in side and side["seconds"] > 0
    assert isinstance(flow_model, FlowVelocity) and flow_model.cfg.sigma_max == 1.0
    assert eval_edm_loss(flow_model, digits.float()) == pytest.approx(side["eval_loss_ema"], rel=1e-3)


def test_flow_velocity_at_sigma_one_is_x_minus_the_data_mean(flow_model, digits):
    """At σ = 1, x = ε carries no information on x_0: the exact velocity is x − E[x_0]. Averaged over 2000
    draws the model's x − v must be the data's mean image (pixel RMS error < 0.05 on a [−1, 1] scale; the
    mean image itself has RMS 0.6, so a sign or scale error of the preconditioning fails)."""
    z = torch.randn(2000, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    est = (z - flow_model(z, 1.0)).mean(0)
    mean = digits.mean(0)
    assert float((est - mean).square().mean().sqrt()) < 0.05
    assert float(mean.square().mean().sqrt()) > 0.3


@pytest.mark.parametrize("sigma", [0.1, 0.3, 0.5])
def test_flow_data_prediction_beats_the_best_linear_one(flow_model, digits, sigma):
    """x_θ = x − σ v_θ (α + σ = 1) against the Wiener estimate of x_0 from x = α x_0 + σ ε with the digits' own
    mean and covariance, μ + α Σ (α² Σ + σ² I)⁻¹ (x − α μ): the learned model must be clearly better."""
    alpha = 1 - sigma
    x0 = digits.reshape(len(digits), -1)
    mu, cov = x0.mean(0), torch.cov(x0.T)
    n = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = alpha * x0 + sigma * n
    gain = alpha * cov @ torch.linalg.inv(alpha**2 * cov + sigma**2 * torch.eye(64, dtype=torch.float64))
    lin = mu + (x - alpha * mu) @ gain.T
    v = flow_model(x.reshape(-1, 1, 8, 8), torch.full((len(x),), sigma, dtype=torch.float64)).reshape(len(x), -1)
    mse_net, mse_lin = ((x - sigma * v - x0) ** 2).mean(), ((lin - x0) ** 2).mean()
    assert mse_net < 0.8 * mse_lin, (float(mse_net), float(mse_lin))


def test_flow_samples_are_digits_in_feature_space():
    """FD_digits of 400 samples (ER-SDE-3 and flow Euler, 20 steps from σ = 1) within 3× the real-data floor at
    n = 400, far below the pixel-shuffled digits; their mean intensity within 0.03 of the data's."""
    fd = DigitFD()
    im = load_image_model("digits-flow")
    assert im.kind == "flow"
    floor, _ = t_interval(fd.real_floor(400, reps=6))
    real = load_digits_tensor()[0]
    shuffled = real[:400].reshape(400, 64)[:, torch.randperm(64, generator=torch.Generator().manual_seed(0))]
    fd_shuffled = fd(shuffled.reshape(400, 1, 8, 8))
    for sampler in ("er_sde", "flow_euler"):
        x = sample_images(im, range(400), steps=20, sampler=sampler)
        val = fd(x)
        assert val < 3 * floor and fd_shuffled > 10 * val, (sampler, val, floor, fd_shuffled)
        assert abs(float(x.clamp(-1, 1).mean() - real.mean())) < 0.03


def test_loader_checks_the_objective(tmp_path):
    with pytest.raises(ValueError, match="'flow' checkpoint, not 'edm'"):
        load_digits_unet(FLOW_UNET_PATH, objective="edm")
    with pytest.raises(ValueError, match="'edm' checkpoint, not 'flow'"):
        load_digits_unet(UNET_PATH, objective="flow")
    with pytest.raises(ValueError, match="objective 'rf'"):
        load_digits_unet(objective="rf")
    assert isinstance(load_digits_unet(UNET_PATH), EDMDenoiser)  # a checkpoint without an objective is EDM
    # a flow checkpoint under any .pt name samples as a flow model
    ck = torch.load(FLOW_UNET_PATH, weights_only=True)
    torch.save(ck, tmp_path / "mine.pt")
    assert load_image_model(str(tmp_path / "mine.pt")).kind == "flow"
    with pytest.raises(FileNotFoundError, match="--objective flow"):
        load_digits_unet(tmp_path / "none.pt", objective="flow")


def test_bench_flow_quick_writes_consistent_results(tmp_path):
    assert main(["bench", "flow", "--quick", "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "bench_flow.json").read_text())
    d = res["digits"]
    labels = [c["label"] for c in res["configs"]]
    assert [r["sampler"] for r in d["rows"]] == labels and res["nfes"] == [10]
    assert "ER-SDE-3 er_sde_5 corrected flow-exp." in labels  # expansion="flow" (eqs. (53)–(57))
    for r in d["rows"]:
        assert np.isfinite([r["fd"], r["ci95"], r["intensity"], r["intensity_ci95"]]).all() and r["fd"] > 0
        assert r["fd"] == pytest.approx(np.mean(r["blocks"]))
        assert "fd_inf" not in r  # eq. (52) needs blocks of n > 2 · 64 images; the quick blocks are smaller
        assert r["intensity"] == pytest.approx(np.mean(r["intensity_blocks"]))
        assert abs(r["intensity"] - d["data_intensity"]) < 0.1
        ref = next(q for q in d["rows"] if q["sampler"] == res["reference_config"] and q["nfe"] == r["nfe"])
        assert r["diff_vs_ref"] == pytest.approx(r["fd"] - ref["fd"])  # paired mean = difference of means
    assert d["data_intensity"] == pytest.approx(float(load_digits_tensor()[0].mean()), abs=2e-3)
    for v in res["toy"]["velocities"].values():
        assert [r["sampler"] for r in v["rows"]] == labels and all(r["fd"] > 0 for r in v["rows"])
        assert all("fd_inf" not in r for r in v["rows"])  # the 64-D toy in blocks of 64: no FD_∞ (n/2 <= D)
    assert res["answer"][0]["best_baseline"] in labels
    md = (tmp_path / "bench_flow.md").read_text()
    assert "NOT Inception-FID" in md and "exact velocity" in md and "perturbed velocity" in md
    assert "FD_∞ NFE 10" not in md and "FD_∞ (eq. 52) is not reported" in md
    assert (tmp_path / "bench_flow.png").stat().st_size > 0 and (tmp_path / "bench_flow.pdf").exists()


def _sample_args(out, *extra):
    return ["sample", "--model", "digits-flow", "--seeds", "0-5", "--steps", "4", "--batch", "6", "--outdir", str(out),
            "--device", "cpu", *extra]  # fmt: skip


def test_sample_cli_digits_flow_writes_resumes_and_records_the_schedule(tmp_path, capsys):
    from ersde_theory.datasets.pixels import to_uint8
    from ersde_theory.evaluation.image_metrics import read_png_dir

    out = tmp_path / "er"
    assert main(_sample_args(out, "--shift", "2")) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["model"] == "digits-flow" and man["model_kind"] == "flow" and man["schedule"] == {"flow_shift": 2.0}
    expect = sample_images(load_image_model("digits-flow"), range(6), steps=4, shift=2.0)
    assert torch.equal(read_png_dir(out), to_uint8(expect))
    assert main(_sample_args(out, "--shift", "2", "--batch", "2")) == 0  # a resume: nothing left to do
    assert "wrote 0 images" in capsys.readouterr().out
    assert main(_sample_args(out)) == 2  # another shift: other pixels
    assert "flow_shift" in capsys.readouterr().err
    for sampler in ("flow_euler", "flow_heun", "flow_dpmpp_2m", "flow_dpmpp_2m_sde"):
        o = tmp_path / sampler
        assert main(_sample_args(o, "--sampler", sampler)) == 0
        expect = sample_images(load_image_model("digits-flow"), range(6), steps=4, sampler=sampler)
        assert torch.equal(read_png_dir(o), to_uint8(expect))


@pytest.mark.parametrize(
    "command, message",
    [
        ("bench flow --shift 0", "shift must be a positive number"),
        ("bench flow --nfe 1", "NFE values must be >= 2"),
        ("bench flow --blocks 1", "need >= 2 blocks"),
        ("bench flow --model digits", "is not a flow model"),
        ("sample --shift 0", "--shift must be a positive number"),
        ("sample --shift nan", "--shift must be a positive number"),
        ("sample --sampler heun", "does not sample flow model"),
        ("sample --nsf er_sde_4", "er_sde_4"),
    ],
)
def test_flow_commands_refuse_bad_input_before_writing(tmp_path, capsys, command, message):
    out = tmp_path / "out"
    name, *extra = command.split()
    if name == "sample":
        argv = _sample_args(out, *extra)
    else:
        argv = ["bench", "flow", "--no-toy", "--device", "cpu", "--outdir", str(out), *extra[1:]]
    assert_refused_before_writing(argv, out, message, capsys)


def test_sample_cli_refuses_a_flow_sampler_for_a_ve_model(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["sample", "--model", "digits", "--seeds", "0-1", "--steps", "3", "--sampler", "flow_euler"]
    assert main([*args, "--outdir", str(out), "--device", "cpu"]) == 2
    assert "does not sample ve model" in capsys.readouterr().err and not out.exists()


@pytest.mark.cuda
@pytest.mark.parametrize("sampler", ["er_sde", "flow_euler", "flow_dpmpp_2m_sde"])
def test_digits_flow_on_gpu_matches_cpu_and_never_syncs_per_step(sampler):
    """digits-flow on CUDA: every step after the first model call runs under set_sync_debug_mode('error'); from the
    same initial noise the deterministic samplers give the CPU images to float32 network precision, and the
    stochastic one (CUDA generators draw other numbers than CPU ones) finite images of the data's mean intensity."""
    from ersde_theory import get_flow_schedule, sample_er_sde_vp
    from ersde_theory.models.sampling import flow_sampler, initial_noise

    alphas, sigmas, _ = get_flow_schedule(10)

    def run(device, arm=None):
        model = load_digits_unet(device=device, objective="flow")
        gens, z = initial_noise(range(64), model.sample_shape, device, torch.float64)
        if device != "cuda":
            z = initial_noise(range(64), model.sample_shape, "cuda", torch.float64)[1].to(device)
        kw = dict(generator=gens, callback=arm, check_finite="none", disable=True)
        if sampler == "er_sde":
            return sample_er_sde_vp(model, z, alphas, sigmas, prediction="flow", nsf="ode", **kw)
        return flow_sampler(sampler)(model, z, sigmas, **kw)

    def arm(d):
        if d["i"] == 0:
            torch.cuda.set_sync_debug_mode("error")

    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # float32, as on the CPU
    try:
        out = run("cuda", arm)
    finally:
        torch.cuda.set_sync_debug_mode("default")
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    assert torch.isfinite(out).all()
    if sampler == "flow_dpmpp_2m_sde":
        assert abs(float(out.clamp(-1, 1).mean()) - float(load_digits_tensor()[0].mean())) < 0.05
    else:
        assert float((out.cpu() - run("cpu")).abs().max()) < 1e-3
