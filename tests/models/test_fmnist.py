"""Models layer, the shipped Fashion-MNIST models and their metric: ``fmnist`` (VP) and ``fmnist-flow`` are diffusers
UNet2DModel pipeline folders that diffusers itself loads and runs; their sidecars record how they were made; the
sample command samples them; the FD_fmnist classifier reaches its stated test accuracy; FD_fmnist grows as real test
images are blurred or noised; the scheduler in diffusers' loop equals ``sample_er_sde_vp`` on the fmnist UNet; the
training command runs (tiny, and on a GPU with bfloat16 autocast). Tests that need the data set skip without
Debian's ``dataset-fashion-mnist``."""

import json

import numpy as np
import pytest
import torch

from ersde_theory import get_vp_schedule, sample_er_sde_vp
from ersde_theory.cli import main
from ersde_theory.datasets.fashion_mnist import DEFAULT_DIR, SHA256, load_fashion_mnist
from ersde_theory.models.checkpoints import FMNIST_FLOW_PATH, FMNIST_PATH, FMNIST_UNET
from ersde_theory.models.loading import load_image_model

diffusers = pytest.importorskip("diffusers")
DATA = (DEFAULT_DIR / "train-images-idx3-ubyte.gz").is_file()
needs_data = pytest.mark.skipif(not DATA, reason="Debian's dataset-fashion-mnist is not installed")
pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not (FMNIST_PATH / "unet").is_dir(), reason="the Fashion-MNIST models are not shipped yet"),
]


@pytest.mark.parametrize("path, flow", [(FMNIST_PATH, False), (FMNIST_FLOW_PATH, True)])
def test_shipped_models_are_diffusers_folders_with_their_story(path, flow):
    unet = diffusers.UNet2DModel.from_pretrained(path, subfolder="unet", low_cpu_mem_usage=False)
    side = json.loads(path.with_suffix(".json").read_text())
    n = sum(p.numel() for p in unet.parameters())
    assert side["parameters"] == n and side["objective"] == ("flow" if flow else "vp")
    assert side["data"]["train_images_sha256"] == SHA256["train-images-idx3-ubyte"]
    assert side["command"].startswith("python -m ersde_theory train-fmnist") and side["steps"] >= 2500
    assert side["device"] and side["seconds"] > 0 and len(side["loss_curve"]) >= 6
    assert side["steps"] == side["steps_planned"] and not side["stopped_by_time_limit"]  # its schedule ran out
    assert side["loss_curve"][-1] < 0.6 * side["loss_curve"][0]  # it learnt
    assert unet.config.sample_size == 28 and list(unet.config.block_out_channels) == list(
        FMNIST_UNET["block_out_channels"]
    )
    sched = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
    assert sched["_class_name"] == ("FlowMatchEulerDiscreteScheduler" if flow else "DDPMScheduler")
    im = load_image_model("fmnist-flow" if flow else "fmnist")
    assert im.kind == ("flow" if flow else "vp") and im.shape == (1, 28, 28)


def test_ddpm_pipeline_runs_the_vp_model():
    pipe = diffusers.DDPMPipeline.from_pretrained(FMNIST_PATH, low_cpu_mem_usage=False)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=2, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="np")
    assert out.images.shape == (2, 28, 28, 1) and np.isfinite(out.images).all()


def test_scheduler_in_diffusers_loop_equals_the_sampler_on_the_fmnist_unet():
    """ERSDEScheduler (continuous "time" grid) stepped by hand on the shipped UNet = sample_er_sde_vp, float64."""
    from ersde_theory.diffusers_integration import ERSDEScheduler
    from ersde_theory.diffusers_integration.unet import DiffusersVPModel

    im = load_image_model("fmnist")
    unet = im.model.double()
    sched = ERSDEScheduler.from_config(im.scheduler_config, continuous_timesteps="time")
    sched.set_timesteps(6)
    gens = lambda: [torch.Generator().manual_seed(s) for s in range(3)]  # noqa: E731
    x = torch.stack([torch.randn(1, 28, 28, generator=g, dtype=torch.float64) for g in gens()])
    y, g = x.clone(), gens()
    with torch.no_grad():
        for t in sched.timesteps:
            y = sched.step(unet(y, t.expand(3)).sample, t, y, generator=g).prev_sample
    a, s, t = get_vp_schedule(6, spacing="time", alphas_cumprod=sched.alphas_cumprod_f64, final_zero=True)
    ref = sample_er_sde_vp(
        DiffusersVPModel(unet), x, a, s, prediction="eps", timesteps=t, generator=gens(), disable=True
    )
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)


def test_sample_command_on_both_models(tmp_path, capsys):
    for model in ("fmnist", "fmnist-flow"):
        out = tmp_path / model
        argv = ["sample", "--model", model, "--seeds", "0-3", "--steps", "4", "--outdir", str(out), "--device", "cpu"]
        assert main(argv) == 0
        assert sorted(p.name for p in out.iterdir()) == [*(f"{s:06d}.png" for s in range(4)), "manifest.json"]
        assert json.loads((out / "manifest.json").read_text())["model"] == model
        assert main([*argv[:-4], "--steps", "5", *argv[-4:]]) == 2  # other settings: refused
        assert "steps: 4 -> 5" in capsys.readouterr().err


@needs_data
def test_fd_fmnist_classifier_and_metric():
    from ersde_theory.evaluation.image_metrics import FMNIST_FEATURES_PATH, FashionFD
    from ersde_theory.studies.bench_fmnist import fd_validation

    fd = FashionFD()
    side = json.loads(FMNIST_FEATURES_PATH.with_suffix(".json").read_text())
    xt, yt = load_fashion_mnist("test")
    with torch.no_grad():
        pred = torch.cat([fd.net(xt[i : i + 2500]).argmax(1) for i in range(0, 10_000, 2500)])
    acc = float((pred == yt).double().mean())
    assert acc >= 0.90 and abs(acc - side["test_accuracy"]) < 1e-6
    v = fd_validation(fd, n=1000)
    assert v["monotone"], v
    assert v["blur"]["1.5"] > 5 * v["clean"] and v["noise"]["0.2"] > 2 * v["clean"]
    floor = fd.real_floor(1000, reps=3)
    assert np.all(floor < 2 * v["clean"] + 1)  # real training images sit near real test images


@needs_data
def test_train_fmnist_tiny(tmp_path):
    out = tmp_path / "m"
    argv = ["train-fmnist", "--objective", "flow", "--steps", "2", "--batch", "4", "--out", str(out)]
    assert main([*argv, "--checkpoint", str(tmp_path / "c.ckpt"), "--device", "cpu"]) == 0
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["steps"] == 2 and side["objective"] == "flow" and (out / "unet" / "config.json").is_file()
    assert load_image_model(f"diffusers:{out}").kind == "flow"


@pytest.mark.cuda
@needs_data
def test_train_fmnist_tiny_on_the_gpu_with_bfloat16(tmp_path):
    argv = ["train-fmnist", "--steps", "3", "--batch", "8", "--amp", "--device", "cuda", "--out", str(tmp_path / "m")]
    assert main([*argv, "--checkpoint", str(tmp_path / "c.ckpt")]) == 0
    side = json.loads((tmp_path / "m.json").read_text())
    assert side["amp"] is True and side["device"].startswith("cuda")
