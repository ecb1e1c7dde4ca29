"""``train-toy`` (the learned toy denoisers) and ``bench quality|speed|nsf|official``."""

from __future__ import annotations

import shlex
import sys
import time

from .benches import bench
from .cli import command


def _train_args(p):
    p.add_argument("--problem", choices=["ring_2d", "image_like_64d", "all"], default="all")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="output folder (default: the package's data folder)")


@command("train-toy", _train_args)
def _train_toy(args) -> int:
    """Train the learned toy denoiser(s) and write weights + JSON sidecar (command, seed, loss, error)."""
    import torch

    from .toys.learned import LearnedDenoiser, denoiser_error, save_learned, train_denoiser
    from .toys.problems import get_problem

    torch.set_num_threads(args.threads)
    cmd = "python -m ersde_theory " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    problems = ["ring_2d", "image_like_64d"] if args.problem == "all" else [args.problem]
    for prob in problems:
        print(f"training {prob}")
        net, info = train_denoiser(
            prob, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, device=args.device
        )
        info["command"] = cmd
        info["error_vs_exact"] = denoiser_error(LearnedDenoiser(net), get_problem(prob))
        for path in save_learned(net, info, args.out):
            print(f"wrote {path}")
        print(
            f"final loss {info['final_loss']:.4f}; rel. error "
            + ", ".join(f"σ={s}: {v['rel']:.3f}" for s, v in info["error_vs_exact"].items())
        )
    return 0


def _bench_args(p):
    p.add_argument("--quick", action="store_true", help="small CI preset")
    p.add_argument("--outdir", default="figures")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu")


def _register(name: str, module: str, func: str, doc: str):
    """``bench <name>``: run ``studies.<module>.<func>(outdir, quick=, device=)`` and print the time."""

    def run(args) -> int:
        import importlib

        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        getattr(importlib.import_module(f".studies.{module}", __package__), func)(
            args.outdir, quick=args.quick, device=args.device
        )
        print(f"done in {time.perf_counter() - t0:.1f}s")
        return 0

    run.__doc__ = doc
    bench(name, _bench_args)(run)


_register(
    "quality", "bench_quality", "run_quality", "Sample quality per NFE with CIs: samplers x NFE x denoiser x problem."
)
_register("speed", "bench_speed", "run_speed", "Per-step solver overhead with a trivial model, every sampler.")
_register("nsf", "nsf_search", "run_nsf_study", "Search for a noise scale function that beats er_sde_5.")
_register(
    "official",
    "official_vs_exact",
    "run_official_vs_exact",
    "Official 100-point Riemann vs exact coefficients at NFE 5-10.",
)
