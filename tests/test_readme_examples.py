"""The README's "Use it with …" examples run as written, with tiny stand-ins for downloaded weights."""

import pickle
import re
from pathlib import Path

import pytest
import torch

from tests.helpers import TinyEDMNet

ROOT = Path(__file__).resolve().parents[1]
SECTION = (ROOT / "README.md").read_text().split("## Use it with", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, re.S)


def block(marker: str) -> str:
    found = [b for b in BLOCKS if marker in b]
    assert len(found) == 1, f"expected one README block containing {marker!r}, found {len(found)}"
    return found[0]


def run(code: str, tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), ns)
    return ns


def test_every_block_is_tested():
    markers = ["from ersde_theory import sample_dpmpp_3m_sde", "def er_sde_flow", "load_edm_network"]
    markers += ["ERSDEScheduler.from_config", "FlowMatchERSDEScheduler.from_config"]
    assert len(BLOCKS) == len(markers) and all(sum(m in b for b in BLOCKS) == 1 for m in markers)


def test_k_diffusion_example(tmp_path, monkeypatch):
    ns = run(block("from ersde_theory import sample_dpmpp_3m_sde"), tmp_path, monkeypatch)
    assert ns["x0"].shape == (8, 2) and torch.isfinite(ns["x0"]).all()


def test_comfyui_example(tmp_path, monkeypatch):
    import ersde_theory as et
    from ersde_theory.toys.flow import flow_velocity

    ns = run(block("def er_sde_flow"), tmp_path, monkeypatch)
    assert ns["x0"].shape == (4, 2) and torch.isfinite(ns["x0"]).all()
    # the flow variant starts at σ = 1 exactly and equals the velocity form of the same sampler
    gm, (_, sig, _) = et.ring_2d(), et.get_flow_schedule(12, shift=3.0)
    v = flow_velocity(gm)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = ns["er_sde_flow"](lambda x, s: x - s[:, None] * v(x, s), x, sig, None, None, True, 0.0)
    b = et.sample_er_sde_vp(v, x, 1 - sig, sig, prediction="flow", timesteps=sig, quadrature="comfyui", s_noise=0.0,
                            disable=True)
    assert sig[0] == 1 and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_edm_example(tmp_path, monkeypatch):
    (tmp_path / "edm").mkdir()  # the EDM code folder (the stand-in network needs none of it)
    with open(tmp_path / "edm-cifar10-32x32-cond-vp.pkl", "wb") as f:
        pickle.dump({"ema": TinyEDMNet()}, f)
    ns = run(block("load_edm_network"), tmp_path, monkeypatch)
    images = ns["images"]
    assert images.shape == (4, 1, 8, 8) and images.dtype == torch.float64
    # the stand-in's data are N(class/4, 1) per pixel, so the class means show through the ER SDE samples
    means = images.mean(dim=(1, 2, 3))
    assert torch.all(means[1:] > means[:-1] - 0.6) and float(means[3] - means[0]) > 0
