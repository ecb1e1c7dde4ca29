"""``python -m ersde_theory bench flow``: ER-SDE against the flow baselines on flow-matching models.

Samplers (:func:`configs`): ER-SDE-1/2/3 with the NSFs ``er_sde_5``, ``ode`` and ``sde`` (ER-SDE-3 with the
published and the corrected derivative estimates), run by ``sample_er_sde_vp(prediction="flow")`` through the
VP → VE map, with the denoiser expanded in λ = σ/α (the paper's); corrected ER-SDE-3 with ``er_sde_5`` and ``ode``
also with ``expansion="flow"`` (expanded in the flow time s = σ, docs/theory.md eqs. (53)–(57); rows labelled
"flow-exp."); against the flow Euler, flow Heun, DPM-Solver++(2M) and SDE-DPM-Solver++(2M) samplers of
``ersde_theory.solvers.flow``. All start at σ = 1 exactly on ``get_flow_schedule(steps, shift=shift)``.

Two models:

* **digits-flow**, the shipped rectified-flow UNet (``ersde_theory.models.unet``): quality is FD_digits
  (feature-space Fréchet distance, docs/theory.md eq. 31, NOT Inception-FID;
  ``ersde_theory.evaluation.image_metrics``), and brightness is the mean pixel intensity
  (model space [−1, 1], after the PNG quantisation) against the data's, the over-brightness that flow-model
  users reported for VE-form samplers.
* **a Gaussian-mixture flow toy** (``image_like_64d``, 64-d): quality is the Fréchet distance between the
  Gaussian fit of the samples and the mixture's exact moments (eq. 31). Two velocities: the exact one, and a
  "learned" one, the exact velocity plus a fixed smooth deterministic error (:class:`PerturbedVelocity`) of
  about :data:`TOY_ERROR` of the velocity's RMS, standing in for a network's error at no training cost.

Every configuration samples the same seeds (block k: seeds k·n … (k+1)·n − 1, one generator per seed), so a
metric's 95 % Student-t interval (eq. 33) is over the blocks and differences between configurations are
paired, block by block (:func:`ersde_theory.evaluation.intervals.paired_t_interval`). The reference is
ER-SDE-3 with ``er_sde_5`` (the default sampler); Δ < 0 is better than it. Each FD is reported twice: FD_n, the
distance of each block of n samples (as published FIDs report it, a floor above the true distance; Δ and the answers
use it), and FD_∞ (eq. 52), extrapolated to n = ∞, whose interval is for the true distance.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..datasets.digits import load_digits_tensor
from ..datasets.pixels import from_uint8, to_uint8
from ..evaluation.frechet import frechet_infinity_blocks, frechet_to_moments, infinity_valid
from ..evaluation.image_metrics import FD_LABEL, DigitFD
from ..evaluation.intervals import paired_t_interval, t_interval
from ..evaluation.reports import fd_caption, fd_cells, fd_log, floor_cell, nfe_table, paired_diffs
from ..models.loading import ImageModel, load_image_model
from ..models.sampling import sample_images
from ..solvers.registry import FLOW_SAMPLERS, steps_for_nfe
from ._common import check_nfes, publish

NSFS = ("er_sde_5", "ode", "sde")
REFERENCE = "ER-SDE-3 er_sde_5"
TOY_PROBLEM = "image_like_64d"
TOY_ERROR = 0.05  # the "learned" toy velocity's error, relative to the exact velocity's RMS


FLOW_EXPANSION_NSFS = ("er_sde_5", "ode")  # corrected ER-SDE-3 also run with expansion="flow"


def configs(quick: bool = False) -> list[dict]:
    """The compared samplers: ``{label, sampler, order, nsf, derivatives, expansion}`` (module docstring)."""
    ersde = [
        dict(label=f"ER-SDE-{o} {nsf}{' corrected' if d == 'corrected' else ''}", sampler="er_sde", order=o, nsf=nsf,
             derivatives=d, expansion="lambda")
        for o, d in ((3, "published"), (3, "corrected"), (2, "published"), (1, "published"))
        for nsf in NSFS
    ]  # fmt: skip
    flow_exp = [
        dict(label=f"ER-SDE-3 {nsf} corrected flow-exp.", sampler="er_sde", order=3, nsf=nsf, derivatives="corrected",
             expansion="flow")
        for nsf in FLOW_EXPANSION_NSFS
    ]  # fmt: skip
    base = [
        dict(label=s.label, sampler=b, order=None, nsf=None, derivatives=None, expansion=None)
        for b, s in FLOW_SAMPLERS.items()
    ]
    if quick:
        return [ersde[0], flow_exp[0], base[0], base[2]]
    return ersde[:6] + flow_exp + ersde[6:] + base


def _run(im: ImageModel, seeds, nfe: int, cfg: dict, shift: float, batch: int, device) -> torch.Tensor:
    steps = steps_for_nfe(cfg["sampler"], nfe)
    keys = ("order", "nsf", "derivatives", "expansion")
    kw = {k: cfg[k] for k in keys} if cfg["sampler"] == "er_sde" else {}
    return torch.cat(
        [
            sample_images(
                im, seeds[i : i + batch], steps=steps, sampler=cfg["sampler"], shift=shift, device=device, **kw
            )
            for i in range(0, len(seeds), batch)
        ]
    )


class PerturbedVelocity:
    """``v(x, t) + ε(x, t)``: an exact velocity plus a fixed smooth error,
    ε = rel · rms · tanh(A x + b) ⊙ (0.5 + t), with A (D × D, entries N(0, 1/D)), b ~ N(0, 1) drawn once from
    ``seed`` and rms the exact velocity's RMS at t = 1 (that of ε − x_0 over the mixture, sqrt(1 + E|x_0|²/D)).
    Deterministic: a stand-in for a learned velocity (module docstring)."""

    def __init__(self, velocity, gm, rel: float = TOY_ERROR, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        d = gm.D
        self.velocity = velocity
        self.A = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
        self.b = torch.randn(d, generator=g, dtype=torch.float64)
        second = float(torch.trace(gm.cov()) + gm.mean().square().sum()) / d
        self.scale = rel * math.sqrt(1.0 + second)

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        t4 = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, *([1] * (x.ndim - 1)))
        err = torch.tanh(x @ self.A.to(x) + self.b.to(x)) * (0.5 + t4)
        return self.velocity(x, t) + self.scale * err


def bench_digits(cfgs, nfes, n_per_block: int, blocks: int, shift: float, batch: int, device, model: str, log) -> dict:
    """FD_digits and mean intensity per sampler × NFE on the flow model ``model`` (module docstring)."""
    im = load_image_model(model, device)
    if im.kind != "flow":
        raise ValueError(f"model {model!r} is not a flow model")
    fd = DigitFD()
    data_x, _ = load_digits_tensor()
    data_q = from_uint8(to_uint8(data_x))
    seeds = list(range(n_per_block * blocks))
    rows, per_block = [], {}
    for cfg in cfgs:
        for nfe in nfes:
            t1 = time.perf_counter()
            x = from_uint8(to_uint8(_run(im, seeds, nfe, cfg, shift, batch, device)))
            fds = fd.blocks(x, blocks)
            inten = x.reshape(blocks, n_per_block, -1).mean(dim=(1, 2)).double().numpy()
            per_block[(cfg["label"], nfe)] = fds
            r = dict(sampler=cfg["label"], nfe=nfe, **fd_cells(fds, fd.blocks_infinity(x, blocks)))
            mi, hi = t_interval(inten)
            rows.append(dict(r, intensity=mi, intensity_ci95=hi, intensity_blocks=inten.tolist(),
                             seconds=round(time.perf_counter() - t1, 2)))  # fmt: skip
            if log:
                log(f"digits {cfg['label']:28s} NFE {nfe:3d}  {fd_log(r)}  mean {mi:+.4f} ± {hi:.4f}")
    paired_diffs(rows, per_block, REFERENCE)
    return {
        "model": model,
        "metric": FD_LABEL,
        "feature_dim": fd.dim,
        "real_floor": floor_cell(fd.real_floor(n_per_block, reps=max(blocks, 10)), n_per_block),
        "data_intensity": float(data_q.double().mean()),
        "rows": rows,
    }


def bench_toy(cfgs, nfes, n_per_block: int, blocks: int, shift: float, log) -> dict:
    """FD to the exact moments per sampler × NFE on the Gaussian-mixture flow toy, exact and perturbed
    velocity (module docstring)."""
    from ..toys.flow import flow_velocity
    from ..toys.problems import get_problem

    gm = get_problem(TOY_PROBLEM)
    exact = flow_velocity(gm)
    velocities = {"exact": exact, "learned": PerturbedVelocity(exact, gm)}
    mean, cov = gm.mean().numpy(), gm.cov().numpy()
    seeds = list(range(n_per_block * blocks))
    out = {}
    for vname, vel in velocities.items():
        im = ImageModel(f"{TOY_PROBLEM} ({vname})", "flow", vel, (gm.D,), 0.0, 1.0)
        rows, per_block = [], {}
        for cfg in cfgs:
            for nfe in nfes:
                x = _run(im, seeds, nfe, cfg, shift, len(seeds), "cpu")
                vals = np.array([frechet_to_moments(b, mean, cov) for b in x.reshape(blocks, n_per_block, -1)])
                per_block[(cfg["label"], nfe)] = vals
                inf = frechet_infinity_blocks(x, mean, cov, blocks) if infinity_valid(n_per_block, gm.D) else None
                r = dict(sampler=cfg["label"], nfe=nfe, **fd_cells(vals, inf))
                rows.append(r)
                if log:
                    log(f"toy {vname:7s} {cfg['label']:28s} NFE {nfe:3d}  {fd_log(r, '.5f')}")
        paired_diffs(rows, per_block, REFERENCE)
        out[vname] = {"rows": rows}
    floor_vals = [
        frechet_to_moments(gm.sample(n_per_block, torch.Generator().manual_seed(1000 + k)), mean, cov)
        for k in range(max(blocks, 10))
    ]
    return {"problem": TOY_PROBLEM, "relative_error": TOY_ERROR, "velocities": out,
            "real_floor": floor_cell(floor_vals, n_per_block)}  # fmt: skip


def _by(rows):
    return {(r["sampler"], r["nfe"]): r for r in rows}


def answer(rows: list[dict], nfes, cfgs, data_intensity: float | None = None) -> list[dict]:
    """Per NFE: the best ER-SDE configuration and the best baseline (lowest mean), the paired Δ of the best
    baseline to the reference and to the best ER-SDE configuration (both chosen by their means, so the second
    interval is optimistic for whichever wins), the best NSF of ER-SDE-3 (published derivatives), and, given
    the data's mean intensity, the samplers whose mean intensity differs from it (95 % CI excludes it)."""
    by = _by(rows)
    er = [c["label"] for c in cfgs if c["sampler"] == "er_sde"]
    base = [c["label"] for c in cfgs if c["sampler"] != "er_sde"]
    nsf3 = [
        c["label"] for c in cfgs if c["sampler"] == "er_sde" and c["order"] == 3 and c["derivatives"] == "published"
    ]
    out = []
    for nfe in nfes:
        best_er = min(er, key=lambda s: by[(s, nfe)]["fd"])
        rec = {"nfe": nfe, "best_ersde": best_er, "best_nsf_ersde3": min(nsf3, key=lambda s: by[(s, nfe)]["fd"])}
        if base:
            best_base = min(base, key=lambda s: by[(s, nfe)]["fd"])
            d, h = by[(best_base, nfe)]["diff_vs_ref"], by[(best_base, nfe)]["diff_ci95"]
            bd, bh = paired_t_interval(by[(best_base, nfe)]["blocks"], by[(best_er, nfe)]["blocks"])
            rec.update(
                best_baseline=best_base,
                baseline_minus_ref=d,
                baseline_minus_ref_ci95=h,
                baseline_minus_best_ersde=bd,
                baseline_minus_best_ersde_ci95=bh,
                verdict="ER-SDE better"
                if d - h > 0
                else "baseline better"
                if d + h < 0
                else "no significant difference",
            )
        if data_intensity is not None:
            rec["intensity_differs"] = [
                s for s in er + base if abs(by[(s, nfe)]["intensity"] - data_intensity) > by[(s, nfe)]["intensity_ci95"]
            ]
        out.append(rec)
    return out


def run_bench_flow(outdir="figures", *, quick: bool = False, device="cpu", nfes=(10, 20, 50), n_per_block: int = 400,
                   blocks: int = 5, toy_n_per_block: int = 1000, shift: float = 1.0, batch: int = 400,
                   model: str = "digits-flow", toy: bool = True, log=print) -> dict:  # fmt: skip
    """The bench (module docstring): ``{digits, toy, answer, ...}``, also written to ``outdir`` as
    ``bench_flow.json``/``.md`` (the figure: ``ersde_theory.plots.benches.plot_bench_flow``). ``quick``: the CI
    preset (4 samplers, NFE 10, 2 blocks of 32 images / 64 toy samples). Bad arguments raise ValueError first."""
    if quick:
        nfes, n_per_block, toy_n_per_block, blocks = (10,), 32, 64, 2
    nfes = check_nfes(nfes)
    if blocks < 2 or n_per_block < 2 or toy_n_per_block < 2:
        raise ValueError(
            f"need >= 2 blocks of >= 2 samples, got {blocks} blocks of {n_per_block} ({toy_n_per_block} toy)"
        )
    if not (math.isfinite(shift) and shift > 0):
        raise ValueError(f"shift must be a positive number, got {shift}")
    device = torch.device(device)
    cfgs = configs(quick)
    t0 = time.perf_counter()
    res = {
        "preset": "quick" if quick else "full",
        "nfes": list(nfes),
        "shift": shift,
        "blocks": blocks,
        "n_per_block": n_per_block,
        "toy_n_per_block": toy_n_per_block,
        "reference_config": REFERENCE,
        "configs": cfgs,
    }
    res["digits"] = bench_digits(cfgs, nfes, n_per_block, blocks, shift, batch, device, model, log)
    res["answer"] = answer(res["digits"]["rows"], nfes, cfgs, res["digits"]["data_intensity"])
    if toy:
        res["toy"] = bench_toy(cfgs, nfes, toy_n_per_block, blocks, shift, log)
        for v in res["toy"]["velocities"].values():
            v["answer"] = answer(v["rows"], nfes, cfgs)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    publish(outdir, "bench_flow", res, flow_markdown(res), log)
    return res


def _intensity(r: dict) -> str:
    return f"{r['intensity']:+.3f} ± {r['intensity_ci95']:.3f}"


def _answer_lines(ans) -> list[str]:
    out = []
    for a in ans:
        s = f"- NFE {a['nfe']}: best ER-SDE {a['best_ersde']}; best NSF of ER-SDE-3: {a['best_nsf_ersde3']}"
        if a.get("best_baseline"):
            s += (
                f"; best baseline {a['best_baseline']}: Δ to {REFERENCE} {a['baseline_minus_ref']:+.3g} ± "
                f"{a['baseline_minus_ref_ci95']:.2g} ({a['verdict']}), Δ to the best ER-SDE "
                f"{a['baseline_minus_best_ersde']:+.3g} ± {a['baseline_minus_best_ersde_ci95']:.2g}"
            )
        if "intensity_differs" in a:
            s += "; mean intensity off the data's (CI excludes it): " + (", ".join(a["intensity_differs"]) or "none")
        out.append(s + ".")
    return out


def flow_markdown(res: dict) -> str:
    nfes, d = res["nfes"], res["digits"]
    lines = [
        "# bench flow: ER-SDE vs flow baselines on flow-matching models",
        "",
        f"Schedule: get_flow_schedule(steps, shift={res['shift']}), start at σ = 1 exactly. Mean ± 95 % CI over "
        f"{res['blocks']} seed blocks. {fd_caption(d['rows'], res['n_per_block'], d.get('feature_dim', 64))}; Δ = "
        f"paired difference of FD_n to {REFERENCE} (negative = better "
        "than it).",
        "",
        f"## {d['model']}: {d['metric']}, {res['n_per_block']} images per block; mean pixel intensity in [−1, 1]",
        "",
        *nfe_table(d["rows"], nfes, REFERENCE, ".2f", extra=("mean", _intensity)),
        "",
        f"Data mean intensity {d['data_intensity']:+.3f}. Real-data FD floor at n = {d['real_floor']['n']}: "
        f"{d['real_floor']['fd']:.2f} ± {d['real_floor']['ci95']:.2f}.",
        "",
        *_answer_lines(res["answer"]),
    ]
    if "toy" in res:
        t = res["toy"]
        for vname, v in t["velocities"].items():
            what = (
                "exact velocity"
                if vname == "exact"
                else f"perturbed velocity (exact + smooth error of {t['relative_error']:.0%} RMS)"
            )
            lines += [
                "",
                f"## Toy {t['problem']}, {what}: Fréchet distance to the exact moments, {res['toy_n_per_block']} "
                "samples per block",
                "",
                *nfe_table(v["rows"], nfes, REFERENCE, ".4f"),
                "",
                *_answer_lines(v["answer"]),
            ]
        f = t["real_floor"]
        lines += ["", f"Toy floor (exact samples) at n = {f['n']}: {f['fd']:.4f} ± {f['ci95']:.4f}."]
    return "\n".join(lines) + "\n"
