"""The job of ``python -m ersde_theory sample`` (its options: ersde_theory/cli/sample.py): seeds → PNGs,
alone or under ``torchrun --nproc_per_node=N``.

Seeds are sharded by position (rank r takes seeds[r::N]); each rank skips seeds whose PNG exists, so a
killed run resumes with nothing lost and nothing written twice, whatever the rank count of either run.
Every check (seed range, model loading and its output shape, writable outdir) runs before anything is
written. torch.distributed: gloo on CPU, nccl on GPU (one GPU per local rank).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..devices import resolve_device
from .digits import to_uint8
from .sampling import (
    available_samplers,
    load_image_model,
    parse_nsf,
    parse_seeds,
    png_name,
    probe_model,
    sample_images,
    write_png_atomic,
)

DTYPES = {"float32": torch.float32, "float64": torch.float64}  # keys: cli/sample.py DTYPE_CHOICES


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def check_outdir(outdir: Path) -> None:
    """Create ``outdir`` if needed and prove it writable (a probe file); clear errors otherwise."""
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"outdir {outdir} exists and is not a folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"outdir {outdir} is not writable: {e.strerror or e}") from None


def _dist_env() -> tuple[int, int, int]:
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def run_sample(args) -> int:
    rank, world, local_rank = _dist_env()
    try:
        seeds = parse_seeds(args.seeds)
        nsf = parse_nsf(args.nsf)
        if args.steps < 1 or args.batch < 1:
            raise ValueError("--steps and --batch must be >= 1")
        if args.sampler not in available_samplers():
            raise ValueError(f"unknown sampler {args.sampler!r}; available: {available_samplers()}")
        device = resolve_device(args.device, local_rank=local_rank)
        dtype = DTYPES[args.dtype]
        im = load_image_model(args.model, device, edm_repo=args.edm_repo)
        probe_model(im, device, dtype)
        outdir = Path(args.outdir)
        check_outdir(outdir)
    except (ValueError, FileNotFoundError, ImportError) as e:
        return _fail(str(e))

    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if rank == 0:  # temporary files of killed runs
        for tmp in outdir.glob(".*.png.*.tmp"):
            tmp.unlink(missing_ok=True)
    if distributed:
        dist.barrier()

    mine = seeds[rank::world]
    todo = [s for s in mine if not (outdir / png_name(s)).exists()]
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), unit="img", disable=rank != 0, desc=f"rank 0/{world}")
    for k in range(0, len(todo), args.batch):
        chunk = todo[k : k + args.batch]
        x = sample_images(
            im,
            chunk,
            steps=args.steps,
            sampler=args.sampler,
            order=args.order,
            nsf=nsf,
            quadrature=args.quadrature,
            derivatives=args.derivatives,
            spacing=args.spacing,
            rho=args.rho,
            device=device,
            dtype=dtype,
        )
        for s, img in zip(chunk, to_uint8(x).cpu()):
            write_png_atomic(outdir / png_name(s), img)
        bar.update(len(chunk))
        if args.throttle:
            time.sleep(args.throttle)
    bar.close()
    dt = time.perf_counter() - t0
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    if rank == 0:
        print(
            f"rank 0: wrote {len(todo)} images, skipped {len(mine) - len(todo)} existing, {dt:.1f}s "
            f"({world} rank(s), {len(seeds)} seeds in total) -> {outdir}"
        )
    return 0
