"""Images layer with diffusers: the UNet2DModel adapters and ERSDEScheduler (equal to sample_er_sde_vp, docs/theory.md
eqs. (19)–(22)), the DDPM pipeline, config round trips, and the sample command on a diffusers pipeline folder,
with tiny randomly initialised UNet2DModels built here (offline). Skipped when the optional ``diffusers`` extra is
not installed."""

import json

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel  # noqa: E402

from ersde_theory import get_vp_schedule, sample_er_sde_vp  # noqa: E402
from ersde_theory.cli import main  # noqa: E402
from ersde_theory.images.adapters import (  # noqa: E402
    DiffusersVPModel,
    alphas_cumprod_from_config,  # noqa: E402
    sample_diffusers_unet,
)
from ersde_theory.images.sampling import load_image_model, sample_images  # noqa: E402
from ersde_theory.images.scheduler import ERSDEScheduler  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_unet(out_channels=1, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=out_channels,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    return unet.to(dtype).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def unet():
    return tiny_unet()


def run_scheduler(unet, sched, x, generator):
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(unet(x, t).sample, t, x, generator=generator).prev_sample
    return x


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("nsf", ["er_sde_5", "ode", "sde", "sigma**1.5"])
def test_scheduler_matches_sample_er_sde_vp(unet, order, nsf):
    sched = ERSDEScheduler(solver_order=order, nsf=nsf)
    sched.set_timesteps(7)
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = sample_er_sde_vp(
        DiffusersVPModel(unet),
        x,
        *get_vp_schedule(7, final_zero=True)[:2],
        prediction="eps",
        timesteps=get_vp_schedule(7, final_zero=True)[2],
        order=order,
        nsf=sched._nsf,
        generator=torch.Generator().manual_seed(2),
        disable=True,
    )
    out = run_scheduler(unet, sched, x, torch.Generator().manual_seed(2))
    scale = ref.abs().max()
    assert scale > 1  # a random UNet's ε is large: the comparison is not trivial
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12 * float(scale))


def test_scheduler_matches_with_per_sample_generators_and_logsnr_v_prediction(unet):
    sched = ERSDEScheduler(prediction_type="v_prediction", spacing="logsnr", derivatives="corrected")
    sched.set_timesteps(6)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a, s, t = get_vp_schedule(6, spacing="logsnr", final_zero=True)
    ref = sample_er_sde_vp(
        DiffusersVPModel(unet),
        x,
        a,
        s,
        prediction="v",
        timesteps=t,
        derivatives="corrected",
        generator=[torch.Generator().manual_seed(k) for k in (5, 6)],
        disable=True,
    )
    out = run_scheduler(unet, sched, x, [torch.Generator().manual_seed(k) for k in (5, 6)])
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


def test_ddpm_pipeline_end_to_end_equals_the_solver():
    unet32 = tiny_unet(dtype=torch.float32)
    pipe = DDPMPipeline(unet=unet32, scheduler=ERSDEScheduler(solver_order=3))
    pipe.set_progress_bar_config(disable=True)
    img = pipe(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=6, output_type="np").images
    assert img.shape == (2, 8, 8, 1) and np.isfinite(img).all()
    g = torch.Generator().manual_seed(0)  # the pipeline draws x_T first, then the step noise
    x = torch.randn(2, 1, 8, 8, generator=g)
    ref = sample_diffusers_unet(unet32, x, 6, generator=g, disable=True)
    ref = (ref / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(img, ref, atol=1e-4)  # float32 UNet and state; ε̂ of a random UNet is large


def test_scheduler_config_round_trip_and_compatibility(tmp_path, unet):
    sched = ERSDEScheduler(
        solver_order=2, nsf="er_sde_3", beta_schedule="squaredcos_cap_v2", spacing="logsnr", quadrature="official"
    )
    sched.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert cfg["_class_name"] == "ERSDEScheduler" and cfg["nsf"] == "er_sde_3" and cfg["solver_order"] == 2
    new = ERSDEScheduler.from_pretrained(tmp_path)
    public = lambda c: {k: v for k, v in c.items() if not k.startswith("_")}  # noqa: E731
    assert public(new.config) == public(sched.config)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    outs = []
    for s in (sched, new):
        s.set_timesteps(5)
        outs.append(run_scheduler(unet, s, x, torch.Generator().manual_seed(1)))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    # from a DDPM config (as pipelines swap schedulers) and back
    ddpm = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    ours = ERSDEScheduler.from_config(ddpm.config)
    assert ours.config.beta_schedule == "scaled_linear" and "DDPMScheduler" in [c.__name__ for c in ours.compatibles]
    assert DDPMScheduler.from_config(ours.config).config.beta_end == 0.012


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        dict(beta_schedule="squaredcos_cap_v2"),
        dict(trained_betas=np.linspace(1e-4, 0.02, 50).tolist()),
    ],
)
def test_alphas_cumprod_and_add_noise_agree_with_ddpm(kw):
    ddpm, ours = DDPMScheduler(**kw), ERSDEScheduler(**kw)
    np.testing.assert_allclose(
        alphas_cumprod_from_config(ours.config), ddpm.alphas_cumprod.double().numpy(), rtol=5e-5
    )  # diffusers accumulates ᾱ in float32
    x0 = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    n = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert len(ours) == len(ddpm.alphas_cumprod)
    t = torch.tensor([0, 7, 23, len(ours) - 1])
    torch.testing.assert_close(ours.add_noise(x0, n, t), ddpm.add_noise(x0, n, t), rtol=1e-5, atol=1e-5)


def test_step_shapes_tuple_output_and_scaling(unet):
    sched = ERSDEScheduler()
    assert sched.init_noise_sigma == 1.0 and sched.order == 1 and len(sched) == 1000
    sched.set_timesteps(4)
    assert sched.timesteps.shape == (4,) and torch.all(sched.timesteps[1:] < sched.timesteps[:-1])
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    assert sched.scale_model_input(x, sched.timesteps[0]) is x
    out = sched.step(
        unet(x, sched.timesteps[0]).sample, sched.timesteps[0], x, generator=torch.Generator().manual_seed(0)
    )
    sched.set_timesteps(4)
    tup = sched.step(
        unet(x, sched.timesteps[0]).sample,
        sched.timesteps[0],
        x,
        generator=torch.Generator().manual_seed(0),
        return_dict=False,
    )
    assert out.prev_sample.shape == x.shape and out.pred_original_sample.shape == x.shape
    torch.testing.assert_close(tup[0], out.prev_sample, rtol=0, atol=0)


def test_starting_mid_schedule_equals_custom_timesteps(unet):
    """img2img-style: stepping from timesteps[3] equals a run on the custom timesteps timesteps[3:]."""
    a = ERSDEScheduler()
    a.set_timesteps(9)
    b = ERSDEScheduler()
    b.set_timesteps(timesteps=a.timesteps[3:])
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xa, xb = x.clone(), run_scheduler(unet, b, x.clone(), torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in a.timesteps[3:]:
            xa = a.step(unet(xa, t).sample, t, xa, generator=g).prev_sample
    torch.testing.assert_close(xa, xb, rtol=1e-12, atol=1e-9)


def test_scheduler_bad_input(unet):
    sched = ERSDEScheduler()
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="set_timesteps"):
        sched.step(x, 999, x)
    with pytest.raises(ValueError, match="does not match the 3 custom timesteps"):
        sched.set_timesteps(num_inference_steps=5, timesteps=[900, 500, 100])
    with pytest.raises(ValueError, match="num_train_timesteps"):
        sched.set_timesteps(1001)
    with pytest.raises(ValueError, match="strictly decreasing"):
        sched.set_timesteps(timesteps=[100, 500])
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        ERSDEScheduler(solver_order=4)
    sched.set_timesteps(2)
    with pytest.raises(ValueError, match="model output has shape"):
        sched.step(torch.zeros(1, 2, 8, 8, dtype=torch.float64), sched.timesteps[0], x)
    with pytest.raises(ValueError, match="not in the scheduler's timesteps"):
        sched.step(x, 123.5, x)
    for t in sched.timesteps:
        x = sched.step(unet(x, t).sample, t, x).prev_sample
    with pytest.raises(ValueError, match="all 2 steps have been taken"):
        sched.step(x, sched.timesteps[-1], x)


def test_adapter_calls_the_unet_at_the_schedule_timesteps(unet):
    seen = []
    handle = unet.time_proj.register_forward_hook(lambda m, inp, out: seen.append(inp[0].double().clone()))
    try:
        x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        out = sample_diffusers_unet(
            unet, x, 5, spacing="logsnr", generator=torch.Generator().manual_seed(1), disable=True
        )
    finally:
        handle.remove()
    t = get_vp_schedule(5, spacing="logsnr", final_zero=True)[2][:5]
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(torch.stack([s[0] for s in seen]), t, rtol=0, atol=1e-4)  # float32 inside the UNet


def test_sample_cli_with_a_diffusers_pipeline_folder(tmp_path, unet):
    folder = tmp_path / "pipe"
    DDPMPipeline(unet=tiny_unet(dtype=torch.float32), scheduler=DDPMScheduler()).save_pretrained(folder)
    im = load_image_model(f"diffusers:{folder}")
    assert im.kind == "vp" and im.shape == (1, 8, 8)
    rc = main(
        [
            "sample",
            "--model",
            f"diffusers:{folder}",
            "--seeds",
            "3-5",
            "--steps",
            "4",
            "--outdir",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "000003.png",
        "000004.png",
        "000005.png",
        "manifest.json",
    ]
    a = sample_images(im, [4], steps=4)  # an image depends only on its seed
    b = sample_images(im, [3, 4, 5], steps=4)[1:2]
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)  # float32 UNet: batch-dependent last bits


def test_sample_cli_rejects_a_model_whose_output_shape_does_not_match(tmp_path, capsys):
    folder = tmp_path / "pipe2"
    DDPMPipeline(unet=tiny_unet(out_channels=2, dtype=torch.float32), scheduler=DDPMScheduler()).save_pretrained(folder)
    out = tmp_path / "never"
    rc = main(["sample", "--model", f"diffusers:{folder}", "--seeds", "0-3", "--steps", "3", "--outdir", str(out)])
    assert rc == 2 and "model output has shape (1, 2, 8, 8)" in capsys.readouterr().err
    assert not out.exists()
