"""The job of ``python -m ersde_theory sample`` (its options: ersde_theory/cli/sample.py): seeds → PNGs,
alone or under ``torchrun --nproc_per_node=N``.

* **Validate, then write.** Every check (seeds, NSF, ρ, sampler, device, the model file and its output,
  the step coefficients, the outdir and the manifest) runs before anything is created; errors are one
  line, exit code 2.
* **Seeds** are parsed lazily (:class:`~ersde_theory.images.sampling.SeedRanges`) and sharded by position
  (rank r takes seeds[r::N]) without being materialised: memory O(batch), whatever the range.
* **Manifest.** ``DIR/manifest.json`` records every setting that changes the pixels (model and weights
  hash, sampler, steps, order, NSF, schedule, dtype, image shape, name width, package version). A run
  into a folder with other settings is refused, listing the differences (``--force`` overrides and
  rewrites the manifest). Seeds, batch and rank count may differ: an image depends on its seed alone.
* **Verified resume.** An existing PNG counts as done only if it decodes to the expected size and mode;
  invalid ones are regenerated, and the run reports how many.
* **Atomic writes, safe concurrency.** Each image goes to ``.NAME.HOST.PID.tmp`` (owned by its process),
  is fsynced and renamed. Start-up removes only the temporary files of processes of this host that are
  gone. Jobs sharing an outdir never corrupt or crash each other; they may duplicate work (both write a
  seed neither found; the rename makes the last complete file win, and the pixels are identical).

torch.distributed: gloo on CPU, nccl on GPU (one GPU per local rank).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..devices import resolve_device
from .digits import to_uint8
from .sampling import (
    FLOW_MODELS,
    HOST,
    NAME_WIDTH,
    ImageModel,
    available_samplers,
    load_image_model,
    parse_nsf,
    parse_seeds,
    png_name,
    probe_model,
    sample_images,
    temp_name,
    write_png_atomic,
)

DTYPES = {"float32": torch.float32, "float64": torch.float64}  # keys: cli/sample.py DTYPE_CHOICES
MANIFEST = "manifest.json"


class UsageError(ValueError):
    """A bad argument or outdir state, found before anything is written (exit code 2)."""


def _fail(msg: str, rc: int = 2) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return rc


def _dist_env() -> tuple[int, int, int]:
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


# ---------------------------------------------------------------------------------------------- outdir checks


def _existing_ancestor(path: Path) -> Path:
    p = path.absolute()
    while not p.exists():
        p = p.parent
    return p


def check_outdir(outdir: Path) -> None:
    """The outdir is a folder, or can be created as one: checked without creating anything."""
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"outdir {outdir} exists and is not a folder")
    base = _existing_ancestor(outdir)
    if not base.is_dir():
        raise UsageError(f"outdir {outdir} is not writable: {base} is not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"outdir {outdir} is not writable: no write permission in {base}")


def check_capacity(outdir: Path, n_seeds: int) -> None:
    """Refuse a seed count the outdir's file system could not hold (free inodes; one block per file)."""
    st = os.statvfs(_existing_ancestor(outdir))
    limits = []
    if st.f_files > 0:
        limits.append((st.f_favail, "free inodes"))
    limits.append((st.f_bavail * st.f_frsize // max(st.f_frsize, 512), "free blocks"))
    cap, what = min(limits)
    if n_seeds > cap:
        existing = sum(1 for _ in os.scandir(outdir)) if outdir.is_dir() else 0
        if n_seeds > cap + existing:
            raise UsageError(
                f"--seeds holds {n_seeds} seeds, but outdir {outdir} can hold at most {cap + existing} images "
                f"({cap} {what}{f' + {existing} existing' if existing else ''}): check the seed range"
            )


# ---------------------------------------------------------------------------------------------- the manifest


def _model_files(spec: str) -> list[Path]:
    if spec == "digits":
        from .train import UNET_PATH

        return [UNET_PATH]
    if spec in FLOW_MODELS:
        from .train import FLOW_UNET_PATH

        return [FLOW_UNET_PATH]
    if spec.startswith("diffusers:"):
        root = Path(spec[len("diffusers:") :])
        return sorted(p for p in root.rglob("*") if p.is_file())
    return [Path(spec)]


def weights_hash(spec: str) -> str:
    """sha256 of the model's files (for a diffusers folder: every file, with its relative name)."""
    h = hashlib.sha256()
    files = _model_files(spec)
    root = Path(spec[len("diffusers:") :]) if spec.startswith("diffusers:") else None
    for p in files:
        if root is not None:
            h.update(str(p.relative_to(root)).encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def pixel_settings(args, im, nsf_spec: str) -> dict:
    """Every setting that changes the pixels of an image of a given seed (not seeds, batch or ranks)."""
    from .. import __version__

    shipped = args.model == "digits" or args.model in FLOW_MODELS
    kind = args.model if shipped else args.model.split(":")[0] if ":" in args.model else "file"
    s = {
        "model": kind if kind != "file" else Path(args.model).suffix,
        "weights_sha256": weights_hash(args.model),
        "model_kind": im.kind,
        "shape": list(im.shape),
        "sampler": args.sampler,
        "steps": args.steps,
        "dtype": args.dtype,
        "version": __version__,
    }
    if args.sampler == "er_sde":
        s.update(order=args.order, nsf=nsf_spec, quadrature=args.quadrature, derivatives=args.derivatives)
    if im.kind == "vp":
        s["schedule"] = {
            "spacing": args.spacing,
            **{k: im.scheduler_config.get(k) for k in sorted(im.scheduler_config)},
        }
    elif im.kind == "flow":
        s["schedule"] = {"flow_shift": args.shift}
    else:
        s["schedule"] = {"karras_rho": args.rho, "sigma_min": im.sigma_min, "sigma_max": im.sigma_max}
        s["label_dim"] = im.label_dim
    return json.loads(json.dumps(s))  # as it reads back from the file


def _differences(old: dict, new: dict) -> list[str]:
    return [
        f"{k}: {old.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k) and k != "name_width"
    ]


def read_manifest(outdir: Path) -> dict | None:
    path = outdir / MANIFEST
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text())
        if not isinstance(m, dict):
            raise ValueError("not a JSON object")
        return m
    except (OSError, ValueError) as e:
        raise UsageError(f"{path} is unreadable ({e}); remove it or use another outdir") from None


def check_manifest(outdir: Path, settings: dict, seeds, force: bool) -> int:
    """The name width of the outdir's images; raises UsageError when the outdir was made with other
    settings (unless ``force``), holds images but no manifest, or names images too narrow for ``seeds``."""
    old = read_manifest(outdir)
    if old is None:
        has_pngs = outdir.is_dir() and any(p.name.endswith(".png") for p in os.scandir(outdir))
        if has_pngs and not force:
            raise UsageError(
                f"outdir {outdir} holds PNGs but no {MANIFEST}, so their settings are unknown; "
                "use another outdir, or --force to adopt them"
            )
        return max(NAME_WIDTH, len(str(seeds.max)))
    width = int(old.get("name_width", NAME_WIDTH))
    diff = _differences(old, settings)
    if diff and not force:
        raise UsageError(
            f"outdir {outdir} was sampled with other settings ({'; '.join(diff)}); "
            "use another outdir, or --force to continue with the new settings"
        )
    if len(str(seeds.max)) > width:
        raise UsageError(
            f"seed {seeds.max} has more digits than the {width} this outdir names its images with "
            f"({MANIFEST}: name_width); use another outdir for these seeds"
        )
    return width


def write_manifest(outdir: Path, manifest: dict, replace: bool) -> None:
    """Create ``DIR/manifest.json`` atomically if absent (os.link: one creator wins, the others compare
    equal), or replace it (``--force``)."""
    path = outdir / MANIFEST
    tmp = temp_name(path)
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            diff = _differences(json.loads(path.read_text()), manifest)
            if diff:  # another job created it meanwhile, with other settings
                raise UsageError(f"outdir {outdir} was just sampled with other settings ({'; '.join(diff)})") from None
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- files


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(outdir: Path) -> int:
    """Remove the ``.NAME.HOST.PID.tmp`` files of processes of this host that are gone; leave the rest."""
    n = 0
    for entry in os.scandir(outdir):
        parts = entry.name.rsplit(".", 3)
        if not entry.name.startswith(".") or len(parts) != 4 or parts[3] != "tmp" or not parts[2].isdigit():
            continue
        if parts[1] == HOST and not _pid_alive(int(parts[2])):
            try:
                os.unlink(entry.path)
                n += 1
            except FileNotFoundError:
                pass
    return n


def png_ok(path: Path, shape) -> bool | None:
    """None if ``path`` is absent, True if it decodes to an image of ``shape`` (C, H, W), False otherwise."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            mode, size = img.mode, img.size
    except FileNotFoundError:
        return None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False
    c, h, w = shape
    return size == (w, h) and mode == {1: "L", 3: "RGB"}.get(c)


# ---------------------------------------------------------------------------------------------- the job


def prepare(args, local_rank: int) -> dict:
    """Every check, before anything is written; raises UsageError/ValueError/FileNotFoundError/ImportError."""
    seeds = parse_seeds(args.seeds)
    nsf = parse_nsf(args.nsf)
    if args.steps < 1 or args.batch < 1:
        raise UsageError(f"--steps and --batch must be >= 1, got {args.steps} and {args.batch}")
    if not (math.isfinite(args.rho) and args.rho > 0):
        raise UsageError(f"--rho must be a positive number, got {args.rho}")
    if not (math.isfinite(args.shift) and args.shift > 0):
        raise UsageError(f"--shift must be a positive number, got {args.shift}")
    if args.sampler not in available_samplers() + available_samplers("flow"):
        known = sorted(set(available_samplers() + available_samplers("flow")))
        raise UsageError(f"unknown sampler {args.sampler!r}; available: {', '.join(known)}")
    device = resolve_device(args.device, local_rank=local_rank)
    dtype = DTYPES[args.dtype]
    outdir = Path(args.outdir)
    check_outdir(outdir)
    check_capacity(outdir, len(seeds))
    im = load_image_model(args.model, device, edm_repo=args.edm_repo)
    if args.sampler not in available_samplers(im.kind):
        raise UsageError(
            f"sampler {args.sampler!r} does not sample {im.kind} model {args.model!r}; "
            f"available: {', '.join(available_samplers(im.kind))}"
        )
    probe_model(im, device, dtype)
    if im.kind == "flow":  # the schedule and the step coefficients, on one image of a zero velocity
        from .sampling import sample_images

        zero = ImageModel(im.name, "flow", lambda x, t: torch.zeros_like(x), (1, 1, 1))
        sample_images(
            zero,
            [0],
            steps=args.steps,
            sampler=args.sampler,
            order=args.order,
            nsf=nsf,
            quadrature=args.quadrature,
            derivatives=args.derivatives,
            shift=args.shift,
            dtype=dtype,
        )
    elif im.kind == "ve":  # the schedule and step coefficients (an inadmissible NSF fails here)
        from ..coefficients.ersde import ersde_coefficients, validate_sigmas
        from ..coefficients.schedules import get_sigmas_karras

        sigmas = validate_sigmas(get_sigmas_karras(args.steps, im.sigma_min, im.sigma_max, args.rho))
        if args.sampler == "er_sde":
            ersde_coefficients(sigmas, nsf, args.quadrature)
    else:
        from ..theory.nsf import resolve_nsf

        resolve_nsf(nsf).check_admissible(1e-3, 1e3)
    settings = pixel_settings(args, im, args.nsf)
    width = check_manifest(outdir, settings, seeds, args.force)
    return dict(seeds=seeds, nsf=nsf, device=device, dtype=dtype, im=im, outdir=outdir, settings=settings, width=width)


def _batches(seeds, outdir: Path, width: int, shape, batch: int, counts: dict):
    """Lazily: lists of at most ``batch`` seeds whose PNG is missing or invalid (counted in ``counts``)."""
    chunk = []
    for s in seeds:
        ok = png_ok(outdir / png_name(s, width), shape)
        if ok:
            counts["skipped"] += 1
            continue
        counts["invalid"] += ok is False
        chunk.append(s)
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_sample(args) -> int:
    rank, world, local_rank = _dist_env()
    try:
        p = prepare(args, local_rank)
    except (ValueError, FileNotFoundError, ImportError) as e:
        return _fail(str(e))
    outdir, im, width = p["outdir"], p["im"], p["width"]
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        write_manifest(outdir, {**p["settings"], "name_width": width}, replace=args.force)
        stale = remove_stale_temporaries(outdir)
    except UsageError as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"cannot write to outdir {outdir}: {e.strerror or e}", 1)

    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        if p["device"].type == "cuda":
            torch.cuda.set_device(p["device"])
        dist.init_process_group("nccl" if p["device"].type == "cuda" else "gloo")

    seeds = p["seeds"]
    n_mine = max(0, -(-(len(seeds) - rank) // world))
    counts = {"skipped": 0, "invalid": 0, "written": 0}
    t0 = time.perf_counter()
    bar = tqdm(total=n_mine, unit="img", disable=rank != 0, desc=f"rank 0/{world}")
    try:
        for chunk in _batches(seeds.shard(rank, world), outdir, width, im.shape, args.batch, counts):
            x = sample_images(
                im,
                chunk,
                steps=args.steps,
                sampler=args.sampler,
                order=args.order,
                nsf=p["nsf"],
                quadrature=args.quadrature,
                derivatives=args.derivatives,
                spacing=args.spacing,
                rho=args.rho,
                shift=args.shift,
                device=p["device"],
                dtype=p["dtype"],
            )
            for s, img in zip(chunk, to_uint8(x).cpu()):
                write_png_atomic(outdir / png_name(s, width), img)
                counts["written"] += 1
            bar.n = counts["written"] + counts["skipped"]
            bar.refresh()
            if args.throttle:
                time.sleep(args.throttle)
    except OSError as e:
        bar.close()
        where = f" {e.filename}" if e.filename else ""
        hint = " (disk full)" if e.errno == errno.ENOSPC else ""
        return _fail(f"writing to outdir {outdir} failed{hint}:{where} {e.strerror or e}", 1)
    bar.close()
    dt = time.perf_counter() - t0
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    if rank == 0:
        print(
            f"rank 0: wrote {counts['written']} images ({counts['invalid']} invalid ones regenerated), "
            f"skipped {counts['skipped']} existing, removed {stale} stale temporary files, {dt:.1f}s "
            f"({world} rank(s), {len(seeds)} seeds in total) -> {outdir}"
        )
    return 0
