"""sample: seeds -> DIR/NNNNNN.png, alone or under torchrun --nproc_per_node=N. The job itself is
ersde_theory.sample_job.sample_to_folder, called with these options as keywords; its errors become one-line messages
(exit code 2 for bad input, before anything is written; 1 for a failed write). The choice lists come from the
registries."""

from __future__ import annotations

import argparse

from ..coefficients.ersde import QUADRATURES
from ..coefficients.schedules import VP_SPACINGS
from ..models.loading import MODEL_HELP
from ..sample_job import DEFAULTS, DTYPES
from ..solvers.plan import DERIVATIVES, ORDERS
from ..solvers.registry import MODEL_KINDS, available_samplers
from ..theory.nsf import DEFAULT_NSF, NSF_NAMES
from .args import Command, add_device, add_outdir, fail


def add_arguments(p):
    samplers = {kind: ", ".join(available_samplers(kind)) for kind in MODEL_KINDS}
    p.add_argument("--model", default="digits", help=MODEL_HELP)
    p.add_argument("--seeds", default="0-63", help="seed ranges and lists, e.g. 0-49999 or 1,5,10-19")
    p.add_argument("--steps", type=int, default=20, help="solver steps (ER-SDE: NFE = steps)")
    p.add_argument(
        "--sampler",
        default="er_sde",
        help=f"VE models: {samplers['ve']}; flow models: {samplers['flow']}; diffusers (VP) models: {samplers['vp']}",
    )
    d = DEFAULTS  # options that apply to some samplers or models only: refused elsewhere
    p.add_argument("--order", type=int, choices=ORDERS, help=f"er_sde: the solver order (default: {d['order']})")
    nsfs = ", ".join(NSF_NAMES)
    p.add_argument(
        "--nsf",
        help=f"er_sde: the noise scale function, {nsfs} or a sympy expression in sigma (default: {DEFAULT_NSF})",
    )
    p.add_argument("--quadrature", choices=QUADRATURES, help=f"er_sde: step coefficients (default: {d['quadrature']})")
    p.add_argument(
        "--derivatives",
        choices=DERIVATIVES,
        help=f"er_sde: ER-SDE-Solver-3's derivative estimates (default: {d['derivatives']})",
    )
    p.add_argument(
        "--spacing", choices=VP_SPACINGS, help=f"VP (diffusers) models: step spacing (default: {d['spacing']})"
    )
    p.add_argument("--rho", type=float, help=f"VE models: the Karras/EDM rho (default: {d['rho']:g})")
    p.add_argument(
        "--shift", type=float, help=f"flow models: get_flow_schedule's static shift (default: {d['shift']:g})"
    )
    add_outdir(
        p,
        None,
        help="folder of the PNGs and their manifest.json (created; valid existing PNGs are skipped, so a run "
        "resumes; a folder sampled with other settings is refused)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="sample into an outdir whose manifest has other settings (or none), and rewrite its manifest",
    )
    p.add_argument("--batch", type=int, default=64, help="images per model call, per rank")
    add_device(p)
    p.add_argument("--dtype", default="float64", choices=tuple(DTYPES), help="sampler state dtype")
    p.add_argument("--edm-repo", default=None, help="clone of github.com/NVlabs/edm, for EDM pickles")
    p.add_argument("--throttle", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: sleep per batch


def run(args) -> int:
    from ..sample_job import WriteError, sample_to_folder

    try:
        done = sample_to_folder(
            model=args.model,
            seeds=args.seeds,
            steps=args.steps,
            sampler=args.sampler,
            order=args.order,
            nsf=args.nsf,
            quadrature=args.quadrature,
            derivatives=args.derivatives,
            spacing=args.spacing,
            rho=args.rho,
            shift=args.shift,
            outdir=args.outdir,
            force=args.force,
            batch=args.batch,
            device=args.device,
            dtype=args.dtype,
            edm_repo=args.edm_repo,
            throttle=args.throttle,
        )
    except (ValueError, FileNotFoundError, ImportError) as e:
        return fail(str(e), 2)
    except WriteError as e:
        return fail(str(e), 1)
    if done["rank"] == 0:
        aside = f" after moving them to {done['outdir']}/replaced" if done["invalid"] else ""
        print(
            f"rank 0: wrote {done['written']} images ({done['invalid']} invalid ones regenerated{aside}), "
            f"skipped {done['skipped']} existing, removed {done['stale_removed']} stale temporary files, "
            f"{done['seconds']:.1f}s ({done['world']} rank(s), {done['seeds']} seeds in total) -> {done['outdir']}"
        )
    return 0


SAMPLE = Command(
    "Sample an image model by seed into DIR/NNNNNN.png (resumable; works under torchrun).", add_arguments, run
)
