"""``python -m ersde_theory bench speed``: per-step solver overhead with a trivial model, for every sampler.

Workloads: 10⁶ 2-D points and a 64×3×64×64 tensor, in float32 and float64, ``STEPS`` steps (Karras schedule
ending in 0). The model is x ↦ 0.5 x (one elementwise pass), timed on its own and subtracted, so
overhead per step = (sampler time − model calls × model time) / steps. Best of ``repeats`` runs.

It also times :func:`er_sde_3_per_step_quadrature`, an in-run re-implementation of the published ER-SDE-3
loop: schedule kept as a device tensor, r and the noise variance recomputed each step from φ, the 100-point
left Riemann sums for C_1, C_2 evaluated inside the step, and the official clipping |var| < 1e-6 → 0 and the
σ_{i+1} = 0 test done on the host (one sync each per step). It computes the same numbers as
``sample_er_sde(..., quadrature="official")`` (checked in the tests). Targets: ER-SDE-3 ≤ 1.0× the overhead of
``sample_dpmpp_2m_sde``, and ≤ 0.5× that of the per-step-quadrature loop.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from ..evaluation.reports import markdown_table, write_report
from ..solvers._common import SamplerRun
from ..solvers.registry import SAMPLERS, SIGMA_MAX, Sampler, schedule_for

__all__ = ["er_sde_3_per_step_quadrature", "run_speed", "time_sampler", "WORKLOADS"]

WORKLOADS = {"points_1e6x2": (1_000_000, 2), "images_64x3x64x64": (64, 3, 64, 64)}
QUICK_WORKLOADS = {"points_1e5x2": (100_000, 2), "images_8x3x64x64": (8, 3, 64, 64)}
STEPS = 20


def _phi_er_sde_5(s: torch.Tensor) -> torch.Tensor:
    """The official default NSF φ(σ) = σ (e^{σ^0.3} + 10) on tensors."""
    return s * (torch.exp(s**0.3) + 10.0)


@torch.no_grad()
def er_sde_3_per_step_quadrature(
    model,
    x: torch.Tensor,
    sigmas,
    *,
    phi=_phi_er_sde_5,
    points: int = 100,
    noise_sampler=None,
    generator=None,
    disable=None,
) -> torch.Tensor:
    """ER-SDE-Solver-3 as the published code organises it (docs/theory.md eqs. 12–16), for speed comparisons:
    per step, r = φ(σ_t)/φ(σ_s), var = σ_t² − σ_s² r² (set to 0 when |var| < 1e-6, decided on the host),
    ∫ dσ/φ and ∫ (σ − σ_s)/φ dσ by ``points``-point left Riemann sums on [σ_t, σ_s],
    C_1 = (σ_t − σ_s) + φ_t ∫ dσ/φ, C_2 = (σ_t − σ_s)²/2 + φ_t ∫ (σ − σ_s)/φ dσ, and
    x_t = r x_s + (1 − r) D + C_1 D1 + C_2 D2 + √var z with the published divided differences."""
    run = SamplerRun(model, x, sigmas, noise_sampler=noise_sampler, generator=generator)
    sig = torch.as_tensor(run.sigmas, dtype=torch.float64, device=x.device)
    frac = torch.arange(points, dtype=torch.float64, device=x.device) / points
    s_in = x.new_ones(x.shape[0])
    old_den = old_d1 = None
    for i in range(run.steps):
        s, t = sig[i], sig[i + 1]
        den = model(x, s.to(x.dtype) * s_in)
        if bool(t == 0):  # host sync, as published
            x = den
            break
        r = phi(t) / phi(s)
        var = t * t - s * s * r * r
        if bool(torch.abs(var) < 1e-6):  # host sync, as published
            var = torch.zeros_like(var)
        x_next = r * x + (1 - r) * den
        if old_den is not None:
            pts = t + frac * (s - t)
            dsig = (s - t) / points
            c1 = (t - s) + torch.sum(dsig / phi(pts)) * phi(t)
            d1 = (den - old_den) / (s - sig[i - 1])
            x_next = x_next + c1 * d1
            if old_d1 is not None:
                c2 = (t - s) ** 2 / 2 + torch.sum(dsig * (pts - s) / phi(pts)) * phi(t)
                x_next = x_next + c2 * (2 * (d1 - old_d1) / (s - sig[i - 2]))
            old_d1 = d1
        x = x_next + torch.sqrt(var) * run.noise(i)
        old_den = den
    return x


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_sampler(fn, x, sigmas, device, repeats: int, **kw) -> float:
    """Best wall time of ``repeats`` runs (after one warm-up run)."""
    best = float("inf")
    for k in range(repeats + 1):
        g = torch.Generator(device=device).manual_seed(0)
        _sync(device)
        t0 = time.perf_counter()
        fn(lambda a, s: a * 0.5, x, sigmas, generator=g, disable=True, **kw)
        _sync(device)
        if k:
            best = min(best, time.perf_counter() - t0)
    return best


def _model_time(x, calls: int, device, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats + 1):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            x * 0.5
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def run_speed(
    outdir="figures",
    *,
    quick: bool = False,
    device="cpu",
    repeats: int | None = None,
    workloads: dict | None = None,
    log=print,
) -> dict:
    """Time every sampler (plus the per-step-quadrature loop) on each workload and dtype; write
    ``bench_speed[_quick].json`` and ``.md`` with overhead per step and the ratios of the targets."""
    workloads = workloads or (QUICK_WORKLOADS if quick else WORKLOADS)
    log = log or (lambda *a: None)
    repeats = repeats or (1 if quick else 3)
    cases = dict(SAMPLERS)
    cases["er_sde_3_official_quadrature"] = Sampler(SAMPLERS["er_sde_3"].fn, dict(order=3, quadrature="official"))
    cases["er_sde_3_per_step_quadrature"] = Sampler(er_sde_3_per_step_quadrature)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    results = []
    for wname, shape in workloads.items():
        for dtype in (torch.float32, torch.float64):
            x = SIGMA_MAX * torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device)
            row = {}
            for name, s in cases.items():
                sig = schedule_for(s, STEPS if s.calls_per_step == 1 else 2 * STEPS - 1)
                total = time_sampler(s.fn, x, sig, device, repeats, **s.kwargs)
                calls = s.nfe(STEPS if s.calls_per_step == 1 else 2 * STEPS - 1)
                model = _model_time(x, calls, device, repeats)
                steps = len(sig) - 1
                row[name] = dict(
                    total_s=total,
                    model_s=model,
                    steps=steps,
                    per_step_ms=1e3 * total / steps,
                    overhead_per_step_ms=1e3 * max(total - model, 0.0) / steps,
                )
            ref2m = row["dpmpp_2m_sde"]["overhead_per_step_ms"]
            refq = row["er_sde_3_per_step_quadrature"]["overhead_per_step_ms"]
            e3 = row["er_sde_3"]["overhead_per_step_ms"]
            rec = dict(
                workload=wname,
                shape=list(shape),
                dtype=str(dtype).replace("torch.", ""),
                samplers=row,
                ratio_er_sde_3_vs_dpmpp_2m_sde=e3 / ref2m,
                ratio_er_sde_3_vs_per_step_quadrature=e3 / refq,
            )
            results.append(rec)
            log(
                f"{wname} {rec['dtype']}: ER-SDE-3 overhead {e3:.2f} ms/step = "
                f"{rec['ratio_er_sde_3_vs_dpmpp_2m_sde']:.2f}x dpmpp_2m_sde, "
                f"{rec['ratio_er_sde_3_vs_per_step_quadrature']:.2f}x per-step quadrature"
            )
    data = dict(
        preset="quick" if quick else "full",
        device=str(device),
        steps=STEPS,
        repeats=repeats,
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        machine=platform.processor() or platform.machine(),
        gpu=torch.cuda.get_device_name() if torch.device(device).type == "cuda" else None,
        results=results,
    )
    jpath, mpath = write_report(outdir, "bench_speed_quick" if quick else "bench_speed", data, speed_markdown(data))
    log(f"wrote {jpath} and {mpath.name}")
    return data


def speed_markdown(data: dict) -> str:
    res = data["results"]
    names = list(res[0]["samplers"])
    cols = [f"{r['workload']} {r['dtype']}" for r in res]
    lines = [
        f"# Solver overhead per step, trivial model ({data['device']}, {data['threads']} threads, "
        f"{data['steps']} steps, best of {data['repeats']})\n",
        "Overhead per step in ms (sampler time minus the model calls, divided by the steps).\n",
    ]
    rows = [[n, *(f"{r['samplers'][n]['overhead_per_step_ms']:.3g}" for r in res)] for n in names]
    rows.append(
        ["**ER-SDE-3 / dpmpp_2m_sde** (target ≤ 1.0)", *(f"**{r['ratio_er_sde_3_vs_dpmpp_2m_sde']:.2f}**" for r in res)]
    )
    rows.append(
        ["**ER-SDE-3 / per-step quadrature** (target ≤ 0.5)"]
        + [f"**{r['ratio_er_sde_3_vs_per_step_quadrature']:.2f}**" for r in res]
    )
    lines += markdown_table(["sampler", *cols], rows)
    return "\n".join(lines) + "\n"
