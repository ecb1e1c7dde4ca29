"""train-toy, train-digits, train-digit-features, train-fmnist: retrain the shipped networks (weights + JSON
sidecar)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..models.checkpoints import OBJECTIVES
from ..models.train import FMNIST_OBJECTIVES
from ..toys.learned import DEFAULT_ARCH
from .args import Command, add_device, add_threads, apply_threads, at_least, device_of, fail, positive_float

TRAIN_OUT = "out/train"  # git-ignored: retraining never replaces the shipped weights unless --out names them


def add_toy_arguments(p) -> None:
    p.add_argument("--problem", choices=[*DEFAULT_ARCH, "all"], default="all", help="toy problem")
    p.add_argument("--steps", type=at_least(1), default=4000, help="optimiser steps")
    p.add_argument("--batch", type=at_least(1), default=1024, help="batch size")
    p.add_argument("--lr", type=positive_float, default=2e-3, help="peak learning rate")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_threads(p, 1)
    add_device(p)
    p.add_argument(
        "--out",
        default=TRAIN_OUT,
        help="output folder; the shipped weights are replaced only if this names the package's data folder",
    )


def run_toy(args) -> int:
    from ..toys.learned import LearnedDenoiser, denoiser_error, save_learned, train_denoiser
    from ..toys.problems import get_problem

    apply_threads(args)
    device = str(device_of(args))
    cmd = "python -m ersde_theory " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    problems = ["ring_2d", "image_like_64d"] if args.problem == "all" else [args.problem]
    for prob in problems:
        print(f"training {prob}")
        net, info = train_denoiser(prob, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, device=device)
        info["command"] = cmd
        info["error_vs_exact"] = denoiser_error(LearnedDenoiser(net), get_problem(prob))
        for path in save_learned(net, info, args.out):
            print(f"wrote {path}")
        print(
            f"final loss {info['final_loss']:.4f}; rel. error "
            + ", ".join(f"σ={s}: {v['rel']:.3f}" for s, v in info["error_vs_exact"].items())
        )
    return 0


def _add_checkpoint_arguments(p, shipped: str, out_default: str | None = "", out_help: str = "") -> None:
    """--seed, --device and --out (default: ``out/train/shipped``, or ``out_default`` with ``out_help``); the
    shipped checkpoint ``shipped`` in ersde_theory/data is replaced only if --out names it."""
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_device(p)
    p.add_argument(
        "--out",
        default=f"{TRAIN_OUT}/{shipped}" if out_default == "" else out_default,
        help=out_help or f"checkpoint path; the shipped ersde_theory/data/{shipped} is replaced only if this names it",
    )


def _saved(losses: str, summary: dict, out, side: Path) -> int:
    """Print what a training run reached and where its weights and sidecar went; exit status 0."""
    print(f"{losses}, {summary['seconds']:.0f}s -> {out} (+ {side.name})")
    return 0


def add_digits_arguments(p) -> None:
    p.add_argument("--steps", type=at_least(1), default=4000, help="optimiser steps")
    p.add_argument("--batch", type=at_least(1), default=128, help="batch size")
    p.add_argument("--lr", type=positive_float, default=2e-3, help="peak learning rate")
    p.add_argument(
        "--objective",
        choices=tuple(OBJECTIVES),
        default="edm",
        help="edm: the EDM denoiser (digits_unet.pt); flow: the rectified-flow velocity model "
        "(digits_flow_unet.pt, default --out out/train/digits_flow_unet.pt)",
    )
    _add_checkpoint_arguments(
        p,
        "digits_unet.pt",
        out_default=None,  # resolved by --objective in run_digits
        out_help=f"checkpoint path (default: {TRAIN_OUT}/digits_unet.pt, with --objective flow "
        f"{TRAIN_OUT}/digits_flow_unet.pt); the shipped weights in ersde_theory/data are replaced only if this "
        "names them",
    )


def run_digits(args) -> int:
    from ..models.checkpoints import save_digits_unet
    from ..models.train import train_digits_unet

    out = args.out or f"{TRAIN_OUT}/{'digits_flow_unet.pt' if args.objective == 'flow' else 'digits_unet.pt'}"
    model, summary = train_digits_unet(
        args.steps, args.batch, args.lr, args.seed, device=str(device_of(args)), objective=args.objective
    )
    side = save_digits_unet(model, out, summary)
    losses = f"train loss {summary['train_loss_last200']:.4f}, EMA eval loss {summary['eval_loss_ema']:.4f}"
    return _saved(losses, summary, out, side)


def add_features_arguments(p) -> None:
    p.add_argument("--steps", type=at_least(1), default=1500, help="optimiser steps")
    _add_checkpoint_arguments(p, "digits_features.pt")


def run_features(args) -> int:
    from ..evaluation.image_metrics import save_feature_net
    from ..models.train import train_feature_net

    out = args.out
    net, summary = train_feature_net(args.steps, seed=args.seed, device=str(device_of(args)))
    save_feature_net(net, out, summary)
    print(f"held-out accuracy {summary['test_accuracy']:.4f} -> {out}")
    return 0


def add_fmnist_arguments(p) -> None:
    p.add_argument(
        "--objective", choices=FMNIST_OBJECTIVES, default="vp", help="vp: fmnist (DDPM ε-loss); flow: fmnist-flow"
    )
    p.add_argument("--steps", type=at_least(1), default=10_000, help="optimiser steps")
    p.add_argument("--batch", type=at_least(1), default=64, help="batch size")
    p.add_argument("--lr", type=positive_float, default=5e-4, help="peak learning rate")
    p.add_argument(
        "--time-limit", type=float, default=0.0, help="minutes; stop there and save what was learnt (0: none)"
    )
    p.add_argument("--data", default=None, help="folder of the Fashion-MNIST IDX files (default: $ERSDE_FASHION_MNIST "
                   "or /usr/share/datasets/fashion-mnist, from `apt-get install dataset-fashion-mnist`)")  # fmt: skip
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPU)")
    p.add_argument("--checkpoint", default=None, help="state file saved every 500 steps and resumed from (default: "
                   f"{TRAIN_OUT}/fmnist_OBJECTIVE.ckpt)")  # fmt: skip
    add_threads(p, 0)
    _add_checkpoint_arguments(
        p,
        "fmnist",
        out_default=None,  # resolved by --objective in run_fmnist
        out_help=f"output folder (default: {TRAIN_OUT}/fmnist, with --objective flow {TRAIN_OUT}/fmnist_flow); the "
        "shipped models in ersde_theory/data are replaced only if this names them",
    )


def run_fmnist(args) -> int:
    from ..diffusers_integration.unet import save_unet2d
    from ..models.checkpoints import FMNIST_SCHEDULERS, write_sidecar
    from ..models.train import train_fmnist_unet

    name = "fmnist_flow" if args.objective == "flow" else "fmnist"
    out, ckpt = args.out or f"{TRAIN_OUT}/{name}", args.checkpoint or f"{TRAIN_OUT}/{name}.ckpt"
    if args.steps < 1 or args.batch < 1 or not args.lr > 0 or args.time_limit < 0:
        return fail(f"--steps, --batch >= 1, --lr > 0, --time-limit >= 0, got {args.steps}, {args.batch}, {args.lr}, "
                    f"{args.time_limit}")  # fmt: skip
    apply_threads(args)
    try:
        unet, summary = train_fmnist_unet(
            args.objective, args.steps, args.batch, args.lr, args.seed, device=str(device_of(args)), data=args.data,
            time_limit=args.time_limit * 60 or None, checkpoint=ckpt, amp=args.amp,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    save_unet2d(unet, out, flow=args.objective == "flow", scheduler_config=FMNIST_SCHEDULERS[args.objective])
    side = write_sidecar(Path(out), summary)
    losses = f"train loss {summary['train_loss_last500']:.4f}, EMA test loss {summary['test_loss_ema']:.4f}"
    return _saved(f"{summary['steps']} steps, {losses}", summary, out, side)


def add_fmnist_features_arguments(p) -> None:
    p.add_argument("--steps", type=at_least(1), default=2500, help="optimiser steps (batch 128)")
    p.add_argument("--data", default=None, help="folder of the Fashion-MNIST IDX files (as train-fmnist)")
    add_threads(p, 0)
    _add_checkpoint_arguments(p, "fmnist_features.pt")


def run_fmnist_features(args) -> int:
    from ..datasets.fashion_mnist import load_fashion_mnist
    from ..evaluation.image_metrics import save_feature_net
    from ..models.train import train_fmnist_classifier

    if args.steps < 1:
        return fail(f"--steps must be >= 1, got {args.steps}")
    apply_threads(args)
    try:
        net, summary = train_fmnist_classifier(args.steps, seed=args.seed, device=str(device_of(args)), data=args.data)
        reference, _ = load_fashion_mnist("test", args.data)
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    save_feature_net(net, args.out, summary, reference=reference)
    print(f"test accuracy {summary['test_accuracy']:.4f} -> {args.out}")
    return 0


TRAIN_TOY = Command(
    "Train the learned toy denoiser(s) and write weights + JSON sidecar (command, seed, loss, error).",
    add_toy_arguments,
    run_toy,
)
TRAIN_DIGITS = Command(
    "Train the digits UNet (8x8 sklearn digits), EDM denoiser or rectified-flow velocity (--objective flow), "
    "and write weights + JSON sidecar.",
    add_digits_arguments,
    run_digits,
)
TRAIN_FMNIST = Command(
    "Train a Fashion-MNIST model (diffusers UNet2DModel): fmnist (VP, DDPM's linear beta, eps) or fmnist-flow "
    "(--objective flow, rectified flow), saved as a pipeline folder + JSON sidecar.",
    add_fmnist_arguments,
    run_fmnist,
)
TRAIN_FMNIST_FEATURES = Command(
    "Train the Fashion-MNIST classifier whose features define FD_fmnist (NOT Inception-FID); store the test set's "
    "reference moments.",
    add_fmnist_features_arguments,
    run_fmnist_features,
)
TRAIN_DIGIT_FEATURES = Command(
    "Train the digit classifier whose features define FD_digits (NOT Inception-FID); store reference moments.",
    add_features_arguments,
    run_features,
)
