"""Commands of issue 5: ``train-toy`` (the learned toy denoisers) and ``bench quality|speed|nsf|official``."""
from __future__ import annotations

import shlex
import sys
import time

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
        net, info = train_denoiser(prob, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                                   device=args.device)
        info["command"] = cmd
        info["error_vs_exact"] = denoiser_error(LearnedDenoiser(net), get_problem(prob))
        for path in save_learned(net, info, args.out):
            print(f"wrote {path}")
        print(f"final loss {info['final_loss']:.4f}; rel. error " +
              ", ".join(f"σ={s}: {v['rel']:.3f}" for s, v in info["error_vs_exact"].items()))
    return 0


def _bench_args(p):
    p.add_argument("what", choices=["quality", "speed", "nsf", "official"])
    p.add_argument("--quick", action="store_true", help="small CI preset")
    p.add_argument("--outdir", default="figures")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu")


@command("bench", _bench_args)
def _bench(args) -> int:
    """Benchmarks: sample quality per NFE with CIs, solver speed, the NSF search, official vs exact."""
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.what == "quality":
        from .studies.bench_quality import run_quality
        run_quality(args.outdir, quick=args.quick, device=args.device)
    elif args.what == "speed":
        from .studies.bench_speed import run_speed
        run_speed(args.outdir, quick=args.quick, device=args.device)
    elif args.what == "nsf":
        from .studies.nsf_search import run_nsf_study
        run_nsf_study(args.outdir, quick=args.quick, device=args.device)
    else:
        from .studies.official_vs_exact import run_official_vs_exact
        run_official_vs_exact(args.outdir, quick=args.quick, device=args.device)
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0
