"""sample: seeds -> DIR/NNNNNN.png, alone or under torchrun --nproc_per_node=N (the job itself is
ersde_theory.images.sample_cli.run_sample)."""

from __future__ import annotations

import argparse

from .args import Command, add_device, add_outdir

DTYPE_CHOICES = ("float32", "float64")  # the keys of images.sample_cli.DTYPES (not imported here: torch)


def add_arguments(p):
    p.add_argument("--model", default="digits", help="digits, digits-flow, CHECKPOINT.pt, EDM.pkl or diffusers:FOLDER")
    p.add_argument("--seeds", default="0-63", help="seed ranges and lists, e.g. 0-49999 or 1,5,10-19")
    p.add_argument("--steps", type=int, default=20, help="solver steps (ER-SDE: NFE = steps)")
    p.add_argument(
        "--sampler",
        default="er_sde",
        help="er_sde, or a baseline of ersde_theory.solvers.baselines (flow models: of ersde_theory.solvers.flow, "
        "flow_euler, flow_heun, flow_dpmpp_2m, flow_dpmpp_2m_sde)",
    )
    p.add_argument("--order", type=int, default=3, choices=(1, 2, 3), help="ER-SDE solver order")
    p.add_argument("--nsf", default="er_sde_5", help="ode, sde, er_sde_1..5 or a sympy expression in sigma")
    p.add_argument("--quadrature", default="exact", choices=("exact", "official", "comfyui"), help="step coefficients")
    p.add_argument(
        "--derivatives",
        default="published",
        choices=("published", "corrected"),
        help="derivative estimates of ER-SDE-Solver-3",
    )
    p.add_argument("--spacing", default="time", choices=("time", "logsnr"), help="VP (diffusers) step spacing")
    p.add_argument("--rho", type=float, default=7.0, help="Karras/EDM rho for VE models")
    p.add_argument("--shift", type=float, default=1.0, help="flow models: the static shift of get_flow_schedule")
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
    p.add_argument("--dtype", default="float64", choices=DTYPE_CHOICES, help="sampler state dtype")
    p.add_argument("--edm-repo", default=None, help="clone of github.com/NVlabs/edm, for EDM pickles")
    p.add_argument("--throttle", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: sleep per batch


def run(args) -> int:
    from ..images.sample_cli import run_sample

    return run_sample(args)


SAMPLE = Command(
    "Sample an image model by seed into DIR/NNNNNN.png (resumable; works under torchrun).", add_arguments, run
)
