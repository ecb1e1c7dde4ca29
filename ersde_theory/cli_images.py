"""CLI commands of the image layer: train-digits, train-digit-features, sample, bench images.
Imports stay light (no diffusers) so that ``python -m ersde_theory -h`` is fast."""

from __future__ import annotations

import time

from .benches import bench
from .cli import command
from .images.sample_cli import add_sample_args, run_sample
from .images.train import FEATURES_PATH, UNET_PATH


def _train_args(p):
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(UNET_PATH), help=f"checkpoint path (default: the shipped {UNET_PATH.name})")


@command("train-digits", _train_args)
def _train_digits(args) -> int:
    """Train the EDM-preconditioned digits UNet (8×8 sklearn digits) and write weights + JSON sidecar."""
    from .images.train import save_digits_unet, train_digits_unet

    model, summary = train_digits_unet(args.steps, args.batch, args.lr, args.seed, device=args.device)
    side = save_digits_unet(model, args.out, summary)
    print(
        f"train loss {summary['train_loss_last200']:.4f}, EMA eval loss {summary['eval_loss_ema']:.4f}, "
        f"{summary['seconds']:.0f}s -> {args.out} (+ {side.name})"
    )
    return 0


def _features_args(p):
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(FEATURES_PATH))


@command("train-digit-features", _features_args)
def _train_features(args) -> int:
    """Train the digit classifier whose features define FD_digits (NOT Inception-FID); store reference moments."""
    from .images.fid import save_feature_net, train_feature_net

    net, summary = train_feature_net(args.steps, seed=args.seed, device=args.device)
    save_feature_net(net, args.out, summary)
    print(f"held-out accuracy {summary['test_accuracy']:.4f} -> {args.out}")
    return 0


@command("sample", add_sample_args)
def _sample(args) -> int:
    """Sample an image model by seed into DIR/NNNNNN.png (resumable; works under torchrun)."""
    return run_sample(args)


def _bench_images_args(p):
    p.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--n-per-block", type=int, default=250)
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="CI preset: 2 samplers, NFE 10, 2 blocks of 64")
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--outdir", default="figures")


@bench("images", _bench_images_args)
def _bench_images(args) -> int:
    """Sampler × NFE on the digits model: FD_digits (NOT Inception-FID) with CIs over seed blocks."""
    from .images.bench import markdown_table, run_bench, write_results
    from .images.train import resolve_device

    t0 = time.perf_counter()
    kw = (
        dict(nfes=(10,), n_per_block=64, blocks=2, quick=True)
        if args.quick
        else dict(nfes=tuple(args.nfe), n_per_block=args.n_per_block, blocks=args.blocks)
    )
    res = run_bench(device=resolve_device(args.device), speed=not args.no_speed, **kw)
    paths = write_results(res, args.outdir)
    print(markdown_table(res))
    print(f"wrote {', '.join(map(str, paths))} in {time.perf_counter() - t0:.0f}s")
    return 0
