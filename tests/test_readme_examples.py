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
    markers += ["= ERSDEScheduler.from_config", "FlowMatchERSDEScheduler.from_config"]
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
    b = et.sample_er_sde_vp(
        v, x, 1 - sig, sig, prediction="flow", timesteps=sig, quadrature="comfyui", s_noise=0.0, disable=True
    )
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


class PromptFree:
    """A tiny pipeline standing in for a downloaded one: attributes go to the pipeline, and a call's prompt is
    replaced by the tiny pipeline's prompt embeddings (it has no text encoder)."""

    def __init__(self, pipe, embeds):
        object.__setattr__(self, "_pipe", pipe)
        object.__setattr__(self, "_embeds", embeds)

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def __setattr__(self, name, value):
        setattr(self._pipe, name, value)

    def to(self, *args, **kwargs):
        self._pipe.to(*args, **kwargs)
        return self

    def __call__(self, prompt, **kwargs):
        assert isinstance(prompt, str)
        return self._pipe(**{**kwargs, **self._embeds})


def _fake_from_pretrained(monkeypatch, cls, make):
    calls = []

    def from_pretrained(*args, **kwargs):
        # the examples pass what the installed diffusers takes without a deprecation warning (torch_dtype is
        # deprecated from diffusers 0.40 on: dtype)
        import warnings

        from diffusers.utils.deprecation_utils import _resolve_dtype

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            calls.append(_resolve_dtype(kwargs.get("dtype"), kwargs.get("torch_dtype")))
        assert "torch_dtype" not in kwargs
        return make()

    monkeypatch.setattr(cls, "from_pretrained", from_pretrained)
    return calls


def test_diffusers_vp_example(tmp_path, monkeypatch):
    diffusers = pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from ersde_theory.diffusers_integration.pipelines import build_pipeline
    from ersde_theory.diffusers_integration.schedulers import ERSDEScheduler

    def make():  # SDXL's released scheduler config: Euler on the scaled-linear betas, leading spacing, offset 1
        base = diffusers.EulerDiscreteScheduler(
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            steps_offset=1,
            timestep_spacing="leading",
        )
        pipe, kw = build_pipeline("sdxl", base)
        return PromptFree(pipe, {k: v for k, v in kw.items() if "embeds" in k})

    calls = _fake_from_pretrained(monkeypatch, diffusers.StableDiffusionXLPipeline, make)
    ns = run(block("= ERSDEScheduler.from_config"), tmp_path, monkeypatch)
    sched = ns["pipe"].scheduler
    assert calls == [torch.float32] and isinstance(sched, ERSDEScheduler) and sched.step_index == 20
    assert sched.config.beta_schedule == "scaled_linear" and sched.timesteps[0] > sched.timesteps[-1] > 0
    assert ns["image"].size == (32, 32)  # a PIL image from the tiny VAE


def test_diffusers_flow_example(tmp_path, monkeypatch):
    diffusers = pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from ersde_theory.diffusers_integration.pipelines import (
        RELEASED_SCHEDULER_CONFIGS,
        tiny_flow_pipeline,
        tiny_prompt_kwargs,
    )
    from ersde_theory.diffusers_integration.schedulers import FlowMatchERSDEScheduler

    def make():
        base = diffusers.FlowMatchEulerDiscreteScheduler(**RELEASED_SCHEDULER_CONFIGS["sd3"])
        return PromptFree(tiny_flow_pipeline("sd3", base), tiny_prompt_kwargs("sd3"))

    _fake_from_pretrained(monkeypatch, diffusers.StableDiffusion3Pipeline, make)
    ns = run(block("FlowMatchERSDEScheduler.from_config"), tmp_path, monkeypatch)
    sched = ns["pipe"].scheduler
    assert isinstance(sched, FlowMatchERSDEScheduler) and sched.config.shift == 3.0 and sched.step_index == 20
    assert float(sched.sigmas[0]) == 1.0  # the exact start at σ = 1
    first = ns["image"]
    again = run(block("FlowMatchERSDEScheduler.from_config"), tmp_path, monkeypatch)["image"]
    assert first.tobytes() == again.tobytes()  # the seeds fix the image (scheduler.generator included)


def test_api_block(tmp_path, monkeypatch):
    api = (ROOT / "README.md").read_text().split("## The API in a dozen lines", 1)[1]
    ns = run(re.findall(r"```python\n(.*?)```", api, re.S)[0], tmp_path, monkeypatch)
    assert ns["x0"].shape == (8, 2) and torch.isfinite(ns["x0"]).all()
    assert float(ns["s"][0]) == 1.0 and float(ns["a"][0]) == 0.0 and float(ns["t"][0]) == 1000.0
