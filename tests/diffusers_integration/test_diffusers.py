"""diffusers integration: the UNet2DModel adapter (sample_er_sde_vp on a diffusers VP model, docs/theory.md
eqs. (19)–(22)) and the sample command on a diffusers pipeline folder, with tiny randomly initialised UNet2DModels
(offline). ERSDEScheduler's tests are in test_scheduler*.py. Skipped when the optional ``diffusers`` extra is not
installed."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
from diffusers import DDPMPipeline, DDPMScheduler  # noqa: E402

from ersde_theory import get_vp_schedule  # noqa: E402
from ersde_theory.cli import main  # noqa: E402
from ersde_theory.diffusers_integration.unet import sample_diffusers_unet  # noqa: E402
from ersde_theory.models.loading import load_image_model  # noqa: E402
from ersde_theory.models.sampling import sample_images  # noqa: E402
from tests.helpers import tiny_unet2d  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def unet():
    return tiny_unet2d()


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
    DDPMPipeline(unet=tiny_unet2d(dtype=torch.float32), scheduler=DDPMScheduler()).save_pretrained(folder)
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
    DDPMPipeline(unet=tiny_unet2d(out_channels=2, dtype=torch.float32), scheduler=DDPMScheduler()).save_pretrained(
        folder
    )
    out = tmp_path / "never"
    rc = main(["sample", "--model", f"diffusers:{folder}", "--seeds", "0-3", "--steps", "3", "--outdir", str(out)])
    assert rc == 2 and "model output has shape (1, 2, 8, 8)" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("flow", [False, True])
def test_save_unet2d_shards_and_loads_back_bit_identical_without_a_bar(tmp_path, monkeypatch, capfd, flow):
    """save_unet2d writes safetensors shards of at most SHARD_SIZE of tensor data with their index (here 20 KB, so
    the tiny UNet takes several), and load_diffusers_unet reads them back bit for bit, printing no progress bar and
    leaving diffusers' own progress-bar setting as it found it."""
    from diffusers.utils import logging as dlog
    from safetensors.torch import load_file

    from ersde_theory.diffusers_integration import unet as integration

    monkeypatch.setattr(integration, "SHARD_SIZE", "20KB")
    net = tiny_unet2d(dtype=torch.float32)
    cfg = {"num_train_timesteps": 1000} if flow else {"beta_schedule": "linear"}
    files = integration.save_unet2d(net, tmp_path / "m", flow=flow, scheduler_config=cfg)
    shards = [f for f in files if f.suffix == ".safetensors"]
    data = [sum(t.numel() * t.element_size() for t in load_file(f).values()) for f in shards]
    assert len(shards) >= 3 and max(data) <= 20_000
    assert (tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors.index.json") in files
    capfd.readouterr()
    back, sched = integration.load_diffusers_unet(tmp_path / "m")
    assert "shards" not in capfd.readouterr().err and dlog.is_progress_bar_enabled()
    assert ("FlowMatch" in sched["_class_name"]) == flow
    old, new = net.state_dict(), back.state_dict()
    assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old)


def test_no_shipped_file_reaches_10_mb():
    """The package's data files (models, sidecars) stay under 10 MB each: the Fashion-MNIST UNets are sharded."""
    from ersde_theory.models.checkpoints import FMNIST_PATH

    data = FMNIST_PATH.parent
    sizes = {p.relative_to(data).as_posix(): p.stat().st_size for p in data.rglob("*") if p.is_file()}
    assert len([n for n in sizes if n.endswith(".safetensors")]) >= 4
    assert max(sizes.values()) < 10 * 10**6, max(sizes.items(), key=lambda kv: kv[1])
