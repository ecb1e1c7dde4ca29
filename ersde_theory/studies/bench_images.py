"""``python -m ersde_theory bench images``: sampler × NFE on the digits model, quality as FD_digits
(feature-space Fréchet distance, docs/theory.md eq. 31, NOT Inception-FID; ``ersde_theory.evaluation.image_metrics``)
with 95 % Student-t
CIs (eq. 33) over disjoint seed blocks, and the solver's overhead relative to the UNet. Each cell reports FD_n (the
distance of n samples, as published FIDs report it, a floor above the true distance) and FD_∞ (eq. 52, extrapolated
to n = ∞: its interval is for the distance between the sampler's feature moments and the reference's).

Every configuration samples the same seeds (block k holds seeds k·n … (k+1)·n − 1), so differences
between configurations are also reported paired, block by block, with their own t-intervals. The real-data
floor (eq. 32) is the FD_digits of n real digits drawn with replacement: what an exact sampler of the data
reaches at n.
"""

from __future__ import annotations

import time

import torch

from ..coefficients.schedules import get_sigmas_karras
from ..evaluation.image_metrics import FD_LABEL, DigitFD
from ..evaluation.reports import fd_caption, fd_cells, fd_log, floor_cell, nfe_table, paired_diffs
from ..models.loading import load_image_model
from ..models.sampling import initial_noise, sample_images
from ..solvers.registry import available_samplers, steps_for_nfe
from ._common import check_blocks, check_nfes, publish

ERSDE_CONFIGS = [  # (label, sampler, order, nsf)
    ("ER-SDE-3 er_sde_5", "er_sde", 3, "er_sde_5"),
    ("ER-SDE-2 er_sde_5", "er_sde", 2, "er_sde_5"),
    ("ER-SDE-1 er_sde_5", "er_sde", 1, "er_sde_5"),
    ("ER-SDE-3 ode", "er_sde", 3, "ode"),
    ("ER-SDE-1 ode (=DDIM)", "er_sde", 1, "ode"),
    ("ER-SDE-3 sde", "er_sde", 3, "sde"),
    ("ER-SDE-1 sde (=SDE-DPM-Solver++1)", "er_sde", 1, "sde"),
]
BASELINES = ["heun", "dpmpp_2m", "dpmpp_2m_sde", "euler_ancestral", "sa_solver"]


def configs(quick: bool = False) -> list[tuple]:
    """ER-SDE orders/NSFs, plus the baselines of the sampler registry (``available_samplers``)."""
    if quick:
        return [ERSDE_CONFIGS[0], ERSDE_CONFIGS[4]]
    have = available_samplers()
    return ERSDE_CONFIGS + [(b, b, None, None) for b in BASELINES if b in have]


def _sample(im, seeds, nfe, sampler, order, nsf, batch, device):
    steps = steps_for_nfe(sampler, nfe)
    kw = dict(order=order, nsf=nsf) if sampler == "er_sde" else {}
    out = [
        sample_images(im, seeds[i : i + batch], steps=steps, sampler=sampler, device=device, **kw)
        for i in range(0, len(seeds), batch)
    ]
    return torch.cat(out)


@torch.no_grad()
def solver_overhead(im, steps: int = 20, batch: int = 256, reps: int = 3, device="cpu") -> dict:
    """Wall time of ER-SDE-3 sampling versus its ``steps`` model calls alone, at ``batch`` images."""
    sigmas = get_sigmas_karras(steps, im.sigma_min, im.sigma_max)
    sig = sigmas.to(device=device, dtype=torch.float64)
    _, z = initial_noise(range(batch), im.shape, device, torch.float64)
    ones = z.new_ones(batch)

    def model_only():
        for i in range(steps):
            im.model(z, sig[i] * ones)

    def full(per_seed: bool):
        seeds = list(range(batch)) if per_seed else [0]
        if per_seed:
            sample_images(im, seeds, steps=steps, device=device)
        else:
            from ..solvers.ersde import sample_er_sde

            g = torch.Generator(device=device).manual_seed(0)
            sample_er_sde(im.model, z * float(sigmas[0]), sigmas, generator=g, disable=True)

    def best(fn):
        times = []
        for _ in range(reps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return min(times)

    model_only()
    t_model = best(model_only)
    t_per_seed = best(lambda: full(True))
    t_one_gen = best(lambda: full(False))
    return {
        "device": str(device),
        "batch": batch,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "model_seconds": t_model,
        "sampler_seconds_per_seed_generators": t_per_seed,
        "sampler_seconds_one_generator": t_one_gen,
        "overhead_pct_per_seed_generators": 100 * (t_per_seed / t_model - 1),
        "overhead_pct_one_generator": 100 * (t_one_gen / t_model - 1),
        "images_per_second": batch / t_per_seed,
    }


def run_bench_images(outdir="figures", *, quick: bool = False, device="cpu", nfes=(10, 20, 50), n_per_block: int = 250,
                     blocks: int = 4, batch: int = 500, model: str = "digits", speed: bool = True,
                     log=print) -> dict:  # fmt: skip
    """The bench (module docstring): writes ``bench_images.json``/``.md`` to ``outdir`` and returns the data.
    ``quick``: the CI preset (2 samplers, NFE 10, 2 blocks of 64)."""
    if quick:
        nfes, n_per_block, blocks = (10,), 64, 2
    nfes = check_nfes(nfes)
    check_blocks(blocks, n_per_block, batch)
    device = torch.device(device)
    im = load_image_model(model, device)
    fd = DigitFD()
    n = n_per_block * blocks
    seeds = list(range(n))
    floor = fd.real_floor(n_per_block, reps=max(blocks, 10))
    rows, per_block = [], {}
    t0 = time.perf_counter()
    for label, sampler, order, nsf in configs(quick):
        for nfe in nfes:
            t1 = time.perf_counter()
            x = _sample(im, seeds, nfe, sampler, order, nsf, batch, device)
            vals = fd.blocks(x, blocks)
            per_block[(label, nfe)] = vals
            r = dict(sampler=label, nfe=nfe, **fd_cells(vals, fd.blocks_infinity(x, blocks)))
            rows.append(dict(r, seconds=round(time.perf_counter() - t1, 2)))
            if log:
                log(f"{label:36s} NFE {nfe:3d}  {fd_log(r)}  ({time.perf_counter() - t1:.0f}s)")
    ref = configs(quick)[0][0]
    paired_diffs(rows, per_block, ref)
    res = {
        "metric": FD_LABEL,
        "model": model,
        "n_per_block": n_per_block,
        "blocks": blocks,
        "feature_dim": fd.dim,
        "nfes": list(nfes),
        "reference_config": ref,
        "real_floor": floor_cell(floor, n_per_block),
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "missing_baselines": [b for b in BASELINES if b not in available_samplers()],
    }
    if speed:
        res["speed"] = solver_overhead(im, batch=256, device=device)
    publish(outdir, "bench_images", res, images_markdown(res), log)
    return res


def images_markdown(res: dict) -> str:
    nfes = res["nfes"]
    ref = res["reference_config"]
    lines = [
        f"{res['metric']}, {res['blocks']} blocks × {res['n_per_block']} seeds, mean ± 95 % CI over blocks; "
        f"{fd_caption(res['rows'], res['n_per_block'], res.get('feature_dim', 64))}; Δ = paired difference of FD_n to "
        f"{ref} (negative = better).",
        "",
        *nfe_table(res["rows"], nfes, ref),
    ]
    f = res["real_floor"]
    lines += ["", f"Real-data floor at n = {f['n']}: {f['fd']:.2f} ± {f['ci95']:.2f}."]
    if res.get("missing_baselines"):
        lines.append(
            f"Baselines not in the sampler registry (ersde_theory.solvers.registry): "
            f"{', '.join(res['missing_baselines'])}."
        )
    if "speed" in res:
        s = res["speed"]
        lines.append(
            f"Speed ({s['device']}, {s['threads']} thread(s), batch {s['batch']}, {s['steps']} steps): "
            f"{s['images_per_second']:.0f} images/s; solver overhead vs UNet time "
            f"{s['overhead_pct_per_seed_generators']:.1f} % with per-seed generators, "
            f"{s['overhead_pct_one_generator']:.1f} % with one generator."
        )
    return "\n".join(lines) + "\n"
