"""``python -m ersde_theory bench fmnist``: ER-SDE-Solver-1/2/3 against diffusers' own schedulers on the shipped
Fashion-MNIST models, quality as FD_fmnist (feature-space Fréchet distance, docs/theory.md eq. (31), in the features of
the project's Fashion-MNIST classifier; NOT Inception-FID; ``ersde_theory.evaluation.image_metrics.FashionFD``).

* **VP** (``fmnist``, DDPM's linear β, ε-prediction): ``ERSDEScheduler`` (orders 1–3, ``er_sde_5`` and ``ode``,
  published and corrected estimates at order 3) against DPM-Solver++(2M) and SDE-DPM-Solver++(2M), UniPC, DDIM
  (η = 0 and 1), Euler ancestral, SA-Solver and DEIS (``ersde_theory.diffusers_integration.baselines``).
* **Flow** (``fmnist-flow``, rectified flow): ``FlowMatchERSDEScheduler`` (orders 1–3, ``er_sde_5`` and ``ode``;
  order 3 corrected with ``expansion="flow"`` too, docs/theory.md eqs. (53)–(57)) against flow Euler and flow Heun.

Every scheduler runs in diffusers' own loop on the same UNet, the same seeds (block k holds seeds k·n … (k+1)·n − 1,
one generator per seed for the initial noise and every noise draw) and spends at most NFE model calls (NFE 10, 20,
50; Heun 2 per step). A cell's quality is the mean FD_fmnist over the seed blocks with a 95 % Student-t interval
(eq. (33)), twice: FD_n of the blocks of n images (comparable with published FIDs, a floor above the true distance)
and FD_∞ extrapolated to n = ∞ (eq. (52)), an interval for the true distance, reported only where n/2 is above the
128 feature dimensions (``ersde_theory.evaluation.frechet.infinity_valid``; the default blocks of 200 are too
small). Differences to the reference ER-SDE-3 er_sde_5 are paired block by block (FD_n). The real-data floor (eq.
(32)) is the FD_fmnist of n real training images at the block size n. The metric is validated on real test images:
it must grow monotonically with Gaussian blur (0.5, 1, 1.5 px) and with pixel noise (σ = 0.05, 0.1, 0.2).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..datasets.fashion_mnist import load_fashion_mnist
from ..datasets.pixels import to_uint8
from ..diffusers_integration.baselines import flow_schedulers, run_scheduler, vp_schedulers
from ..evaluation.image_metrics import FashionFD
from ..evaluation.intervals import paired_t_interval
from ..evaluation.reports import fd_caption, fd_cells, fd_log, floor_cell, nfe_table, paired_diffs
from ..models.loading import load_image_model, weights_hash
from ..models.sampling import initial_noise
from ._common import check_blocks, check_nfes, publish

__all__ = ["REFERENCE", "fd_validation", "fmnist_markdown", "run_bench_fmnist"]

REFERENCE = "ER-SDE-3 er_sde_5"
BLURS = (0.5, 1.0, 1.5)
NOISES = (0.05, 0.1, 0.2)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Images (N, 1, H, W) blurred by a Gaussian of ``sigma`` pixels (separable, reflect padding)."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype) / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.reshape(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.reshape(1, 1, -1, 1))


def fd_validation(fd: FashionFD, data=None, n: int = 2000, seed: int = 0) -> dict:
    """FD_fmnist of ``n`` real test images, clean, blurred (:data:`BLURS` px) and noised (:data:`NOISES`, then
    clipped to [−1, 1]): ``monotone`` says whether it grows with each degradation."""
    x, _ = load_fashion_mnist("test", data)
    x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]]
    g = torch.Generator().manual_seed(seed + 1)
    clean = fd(x)
    blur = [fd(gaussian_blur(x, s)) for s in BLURS]
    noise = [fd((x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1)) for s in NOISES]
    mono = lambda v: all(b > a for a, b in zip([clean, *v], v))  # noqa: E731
    return dict(n=n, clean=clean, blur=dict(zip(map(str, BLURS), blur)), noise=dict(zip(map(str, NOISES), noise)),
                monotone=bool(mono(blur) and mono(noise)))  # fmt: skip


def _sample(unet, spec, seeds, nfe: int, batch: int, device, shape) -> tuple[torch.Tensor, int]:
    """The images of ``seeds`` from one scheduler at ``nfe`` model calls, in batches, and the calls per image."""
    out, calls = [], 0
    for i in range(0, len(seeds), batch):
        gens, z = initial_noise(seeds[i : i + batch], shape, device, torch.float32)
        x, calls = run_scheduler(
            unet, spec.make(), z, spec.steps_for(nfe), generator=gens, step_kwargs=spec.step_kwargs
        )
        out.append(to_uint8(x).cpu())
    return torch.cat(out), calls


def _cell_path(cache, model: str, weights: str, label: str, nfe: int, n_per_block: int, blocks: int):
    """The cache file of one cell: keyed by the model's weights, the scheduler's label, NFE and the seed blocks."""
    key = hashlib.sha256(f"{weights}|{label}|{nfe}|{n_per_block}|{blocks}".encode()).hexdigest()[:20]
    return Path(cache) / f"{model.replace(':', '_').replace('/', '_')}_{key}.pt"


def _part(model: str, schedulers, nfes, n_per_block: int, blocks: int, batch: int, device, fd, grid: int, log,
          cache=None):  # fmt: skip
    """Rows (scheduler × NFE: FD mean ± CI, blocks, NFE used, Δ to the reference) and the grid images of one model.
    ``cache``: a folder where each finished cell's images and values are kept (written atomically) and read back
    on a rerun with the same weights, scheduler, NFE and blocks: a killed run resumes, and new schedulers add cells."""
    im = load_image_model(model, device)
    unet = getattr(im.model, "unet", im.model)  # a flow model's velocity wrapper holds the UNet
    specs = schedulers(im.scheduler_config)
    seeds = list(range(n_per_block * blocks))
    weights = weights_hash(model) if cache is not None else ""
    rows, per_block, images = [], {}, {}
    for label, spec in specs.items():
        for nfe in nfes:
            t1 = time.perf_counter()
            path = _cell_path(cache, model, weights, label, nfe, n_per_block, blocks) if cache is not None else None
            if path is not None and path.is_file():
                cell = torch.load(path, weights_only=True)
                x, calls, seconds = cell["images"], int(cell["calls"]), float(cell["seconds"])
            else:
                x, calls = _sample(unet, spec, seeds, nfe, batch, device, im.shape)
                seconds = round(time.perf_counter() - t1, 1)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(f".{os.getpid()}.tmp")
                    torch.save({"images": x, "calls": calls, "seconds": seconds}, tmp)
                    tmp.replace(path)
            vals = fd.blocks(x, blocks)
            per_block[(label, nfe)] = vals
            images[(label, nfe)] = x[:grid]
            row = dict(sampler=label, nfe=nfe, nfe_used=calls, stochastic=spec.stochastic, ersde=spec.ersde)
            row.update(fd_cells(vals, fd.blocks_infinity(x, blocks)))
            rows.append(dict(row, seconds=seconds))
            if log:
                log(f"{model:11s} {label:52s} NFE {nfe:3d} ({calls:3d})  {fd_log(row)}")
    paired_diffs(rows, per_block, REFERENCE)
    return dict(model=model, scheduler_config=im.scheduler_config, rows=rows), images, per_block


def _best(rows, nfe, keep) -> dict | None:
    return min((r for r in rows if r["nfe"] == nfe and keep(r)), key=lambda r: r["fd"], default=None)


def answers(part: dict, per_block: dict, nfes) -> list[dict]:
    """Per NFE: the best stochastic sampler and whether the paired interval to the next best excludes 0; corrected
    minus published ER-SDE-3 (er_sde_5 and ode); the best ER-SDE configuration minus the best ODE baseline (not
    ER-SDE)."""
    rows, out = part["rows"], []
    for nfe in nfes:
        stoch = sorted((r for r in rows if r["nfe"] == nfe and r["stochastic"]), key=lambda r: r["fd"])
        rec = {"nfe": nfe}
        if len(stoch) >= 2:
            d, h = paired_t_interval(per_block[(stoch[1]["sampler"], nfe)], per_block[(stoch[0]["sampler"], nfe)])
            rec.update(best_stochastic=stoch[0]["sampler"], runner_up=stoch[1]["sampler"], runner_up_minus_best=d,
                       runner_up_minus_best_ci95=h, resolved=bool(d - h > 0))  # fmt: skip
        for nsf in ("er_sde_5", "ode"):
            pub, cor = f"ER-SDE-3 {nsf}", f"ER-SDE-3 {nsf} corrected"
            if (cor, nfe) in per_block:
                rec[f"corrected_minus_published_{nsf}"] = paired_t_interval(
                    per_block[(cor, nfe)], per_block[(pub, nfe)]
                )
        best_er = _best(rows, nfe, lambda r: r["ersde"])
        best_ode = _best(rows, nfe, lambda r: not r["stochastic"] and not r["ersde"])  # the baselines' best ODE
        if best_er is not None and best_ode is not None:
            d, h = 0.0, 0.0
            if best_er["sampler"] != best_ode["sampler"]:
                d, h = paired_t_interval(per_block[(best_er["sampler"], nfe)], per_block[(best_ode["sampler"], nfe)])
            rec.update(best_ersde=best_er["sampler"], best_ode=best_ode["sampler"], best_ersde_minus_best_ode=d,
                       best_ersde_minus_best_ode_ci95=h)  # fmt: skip
        out.append(rec)
    return out


def run_bench_fmnist(outdir="figures", *, quick: bool = False, device="cpu", nfes=(10, 20, 50), n_per_block: int = 200,
                     blocks: int = 5, batch: int = 250, vp_model: str = "fmnist", flow_model: str = "fmnist-flow",
                     flow: bool = True, data=None, features=None, grid: int = 8, cache=None,
                     log=print) -> dict:  # fmt: skip
    """The bench (module docstring): writes ``bench_fmnist.json``/``.md`` to ``outdir`` and returns the data, with the
    first ``grid`` images of every cell under ``"grid"`` (not written; ``plots.benches.plot_bench_fmnist`` draws
    them). ``features``: the FD_fmnist classifier file (default: the shipped one). ``quick``: two schedulers per model,
    NFE 10, 2 blocks of 16. ``cache``: a folder of finished cells (:func:`_part`; the CLI's default is
    ``out/cache/bench_fmnist``, ``--no-cache`` for none). Bad arguments raise ValueError first."""
    if quick:
        nfes, n_per_block, blocks = (10,), 16, 2
    nfes = check_nfes(nfes)
    check_blocks(blocks, n_per_block, batch)
    device = torch.device(device)
    fd = FashionFD(features, data=data)
    t0 = time.perf_counter()
    res = dict(preset="quick" if quick else "full", metric=fd.label, nfes=list(nfes), blocks=blocks,
               n_per_block=n_per_block, feature_dim=fd.dim, reference_config=REFERENCE, device=str(device))  # fmt: skip
    res["fd_validation"] = fd_validation(fd, data, n=min(2000, n_per_block * blocks))
    res["real_floor"] = floor_cell(fd.real_floor(n_per_block, reps=max(blocks, 10)), n_per_block)
    grids = {}
    parts = [("vp", vp_model, vp_schedulers)] + ([("flow", flow_model, flow_schedulers)] if flow else [])
    for key, model, schedulers in parts:
        pick = lambda cfg, s=schedulers: s(cfg, quick=quick)  # noqa: E731
        part, grids[key], per_block = _part(model, pick, nfes, n_per_block, blocks, batch, device, fd, grid, log, cache)
        part["answers"] = answers(part, per_block, nfes)
        res[key] = part
    res["seconds"] = round(time.perf_counter() - t0, 1)
    publish(outdir, "bench_fmnist", res, fmnist_markdown(res), log)
    return dict(res, grid=grids)


def _answer_lines(ans: list[dict]) -> list[str]:
    lines = []
    for a in ans:
        s = f"- NFE {a['nfe']}:"
        if "best_stochastic" in a:
            verdict = "resolved (CI excludes 0)" if a["resolved"] else "not resolved (CI includes 0)"
            s += (
                f" best stochastic sampler {a['best_stochastic']}; next {a['runner_up']} is worse by "
                f"{a['runner_up_minus_best']:+.3g} ± {a['runner_up_minus_best_ci95']:.2g}: {verdict}."
            )
        for nsf in ("er_sde_5", "ode"):
            if f"corrected_minus_published_{nsf}" in a:
                d, h = a[f"corrected_minus_published_{nsf}"]
                s += f" Corrected − published ER-SDE-3 {nsf}: {d:+.3g} ± {h:.2g}."
        if "best_ode" in a:
            s += (
                f" Best ER-SDE ({a['best_ersde']}) − best ODE baseline ({a['best_ode']}): "
                f"{a['best_ersde_minus_best_ode']:+.3g} ± {a['best_ersde_minus_best_ode_ci95']:.2g}."
            )
        lines.append(s)
    return lines


def _rows(res: dict) -> list[dict]:
    return [r for key in ("vp", "flow") if key in res for r in res[key]["rows"]]


def fmnist_markdown(res: dict) -> str:
    nfes, v, f = res["nfes"], res["fd_validation"], res["real_floor"]
    lines = [
        "# bench fmnist: ER-SDE vs diffusers' schedulers on Fashion-MNIST",
        "",
        f"{res['metric']}. Mean ± 95 % CI over {res['blocks']} seed blocks of {res['n_per_block']} images. "
        f"{fd_caption(_rows(res), res['n_per_block'], res.get('feature_dim', 128))}; Δ = paired difference of FD_n to "
        f"{REFERENCE} (negative = better than it). Every scheduler "
        'runs in diffusers\' loop on the same UNet and seeds, `timestep_spacing="trailing"`, no clipping; NFE = model '
        f"calls (flow Heun: the odd number below). Real-data floor at n = {f['n']}: {f['fd']:.2f} ± {f['ci95']:.2f}.",
        "",
        f"Size: {res['blocks'] * res['n_per_block']:,} samples per cell (scheduler × NFE) on {res['device']}, NFE "
        f"{', '.join(map(str, nfes))}. Small cells resolve only large differences: the intervals say which; a GPU run "
        "of 10,000 per cell is `bench fmnist --device cuda --n-per-block 2000 --blocks 5`.",
        "",
        f"Metric check on {v['n']} real test images: clean {v['clean']:.2f}; blurred "
        + ", ".join(f"{k} px {val:.2f}" for k, val in v["blur"].items())
        + "; noised "
        + ", ".join(f"σ {k} {val:.2f}" for k, val in v["noise"].items())
        + f" ({'monotone' if v['monotone'] else 'NOT monotone'}).",
    ]
    for key, title in (("vp", "VP model"), ("flow", "flow model")):
        if key in res:
            part = res[key]
            lines += [
                "",
                f"## {part['model']} ({title})",
                "",
                *nfe_table(part["rows"], nfes, REFERENCE),
                "",
                *_answer_lines(part["answers"]),
            ]
    return "\n".join(lines) + "\n"
