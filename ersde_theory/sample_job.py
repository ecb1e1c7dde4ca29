"""The sample job: seeds → ``DIR/{seed:0Wd}.png``, alone or under ``torchrun --nproc_per_node=N``
(:func:`sample_to_folder`; ``python -m ersde_theory sample`` calls it with its options as keywords and turns its
errors into one-line messages and exit codes).

Everything of the job lives here: the seeds, the outdir and its manifest, the PNG files, ``torch.distributed``.
What is sampled is ``ersde_theory.models`` (the model by name, and the images of a batch of seeds).

* **Validate, then write.** Every check (seeds, NSF, ρ, sampler, device, the model file and its output,
  the step coefficients, the outdir and the manifest) runs before anything is created; errors are one
  line, exit code 2.
* **Seeds** are parsed lazily (:class:`SeedRanges`) and sharded by position
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
import json
import math
import operator
import os
import re
import socket
import time
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .datasets.pixels import to_uint8
from .models.loading import ImageModel, load_image_model
from .models.sampling import image_sampler, probe_model
from .solvers.registry import MODEL_KINDS, available_samplers
from .theory.nsf import parse_nsf

__all__ = ["DTYPES", "MAX_SEED", "SeedRanges", "UsageError", "WriteError", "parse_seeds", "png_name"]
__all__ += ["sample_to_folder"]

HOST = socket.gethostname().replace(".", "_")
DTYPES = {"float32": torch.float32, "float64": torch.float64}  # the sampler state's dtype (--dtype)
MANIFEST = "manifest.json"
MAX_STEPS = 100_000  # a schedule's plan holds a few float64 arrays of this length
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit seed
NAME_WIDTH = 6  # digits of an image name unless the outdir's manifest says otherwise (png_name)
_SEEDS_HELP = "expected e.g. '0-49999' or '1,5,10-19'"


class SeedRanges(Sequence):
    """Sorted unique seeds held as disjoint inclusive ranges: ``len``, indexing, iteration and
    :meth:`shard` cost O(number of ranges) memory, however many seeds the ranges hold."""

    def __init__(self, ranges):
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.ranges = tuple(merged)
        self._starts = list(accumulate((hi - lo + 1 for lo, hi in merged), initial=0))

    @property
    def count(self) -> int:
        """The number of seeds (any size; ``len`` stops at ``sys.maxsize``)."""
        return self._starts[-1]

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        n = len(self)
        k = operator.index(k)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("seed index out of range")
        j = bisect_right(self._starts, k) - 1
        return self.ranges[j][0] + k - self._starts[j]

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)

    def __contains__(self, seed) -> bool:
        j = bisect_right([lo for lo, _ in self.ranges], seed) - 1
        return j >= 0 and seed <= self.ranges[j][1]

    def __eq__(self, other) -> bool:
        if isinstance(other, SeedRanges):
            return self.ranges == other.ranges
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"SeedRanges({','.join(str(lo) if lo == hi else f'{lo}-{hi}' for lo, hi in self.ranges)})"

    @property
    def max(self) -> int:
        return self.ranges[-1][1]

    def shard(self, rank: int, world: int) -> Iterator[int]:
        """seeds[rank::world], lazily (position sharding: rank r takes every world-th seed from the r-th)."""
        offset = rank  # position of this rank's next seed, counted from the start of the current range
        for lo, hi in self.ranges:
            size = hi - lo + 1
            if offset < size:
                yield from range(lo + offset, hi + 1, world)
                offset = (offset - size) % world
            else:
                offset -= size


def parse_seeds(spec: str) -> SeedRanges:
    """``"0-49999"``, ``"7"``, ``"0-9,20,30-31"`` → the sorted unique seeds, as lazy :class:`SeedRanges`
    (memory O(number of ranges)). Seeds are integers in [0, 2^63 − 1]."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"cannot parse seed range {spec!r}: {_SEEDS_HELP}")
    ranges = []
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d{1,30})\s*(?:-\s*(\d{1,30})\s*)?", part)
        if not m:
            raise ValueError(f"cannot parse seed range {spec!r} (at {part!r}): {_SEEDS_HELP}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"cannot parse seed range {spec!r}: {lo}-{hi} is empty (start > end)")
        if hi > MAX_SEED:
            raise ValueError(f"seed range {spec!r}: seed {hi} exceeds the largest seed 2^63 - 1 = {MAX_SEED}")
        ranges.append((lo, hi))
    return SeedRanges(ranges)


def png_name(seed: int, width: int = NAME_WIDTH) -> str:
    """``{seed:0{width}d}.png``. An outdir names all its images with one width (its manifest's
    ``name_width``: 6, or the digit count of the largest seed of the run that created it, if more), so
    that the names sort in seed order; a seed with more digits is refused there."""
    return f"{seed:0{width}d}.png"


def temp_name(path: Path) -> Path:
    """``.NAME.HOST.PID.tmp`` next to ``path``: owned by this process (see remove_stale_temporaries)."""
    return path.with_name(f".{path.name}.{HOST}.{os.getpid()}.tmp")


def write_png_atomic(path: Path, img: torch.Tensor) -> None:
    """Write a uint8 (C, H, W) image (C = 1 or 3) to ``path`` atomically: a temporary file of this process,
    fsynced, then renamed. A crash leaves either no file or the complete file, never a truncated PNG under
    the final name; a failed write (e.g. a full disk) removes its temporary file and raises."""
    from PIL import Image

    arr = img.cpu().numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            Image.fromarray(arr).save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class UsageError(ValueError):
    """A bad argument or outdir state, found before anything is written (exit code 2)."""


class WriteError(RuntimeError):
    """Writing to the outdir failed while the job ran (exit code 1); the message names the outdir and the cause."""


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
    base = _existing_ancestor(outdir)
    if st.f_blocks == 0:  # /proc, /sys and the like
        raise UsageError(f"outdir {outdir} is not writable: {base} is on a file system that holds no files (size 0)")
    if cap == 0:
        raise UsageError(f"outdir {outdir} is not writable: the file system of {base} has no {what[5:]} left")
    if n_seeds > cap:
        existing = sum(1 for _ in os.scandir(outdir)) if outdir.is_dir() else 0
        if n_seeds > cap + existing:
            raise UsageError(
                f"--seeds holds {n_seeds} seeds, but outdir {outdir} can hold at most {cap + existing} images "
                f"({cap} {what}{f' + {existing} existing' if existing else ''}): check the seed range"
            )


# ---------------------------------------------------------------------------------------------- the manifest


def pixel_settings(im: ImageModel, sampling: dict, nsf_spec: str, dtype: str) -> dict:
    """Every setting that changes the pixels of an image of a given seed (not seeds, batch or ranks): the model (its
    label, weights hash, kind and shape), the sampler and schedule, the dtype, the package version."""
    from . import __version__

    s = {
        "model": im.label,
        "weights_sha256": im.weights_sha256,
        "model_kind": im.kind,
        "shape": list(im.shape),
        "sampler": sampling["sampler"],
        "steps": sampling["steps"],
        "dtype": dtype,
        "version": __version__,
    }
    if sampling["sampler"] == "er_sde":
        s.update({k: sampling[k] for k in ("order", "quadrature", "derivatives")}, nsf=nsf_spec)
    if im.kind == "vp":
        s["schedule"] = {
            "spacing": sampling["spacing"],
            **{k: im.scheduler_config.get(k) for k in sorted(im.scheduler_config)},
        }
    elif im.kind == "flow":
        s["schedule"] = {"flow_shift": sampling["shift"]}
    else:
        s["schedule"] = {"karras_rho": sampling["rho"], "sigma_min": im.sigma_min, "sigma_max": im.sigma_max}
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
    width = old.get("name_width", NAME_WIDTH)
    if isinstance(width, bool) or not isinstance(width, int) or not NAME_WIDTH <= width <= len(str(MAX_SEED)):
        raise UsageError(
            f"{outdir / MANIFEST}: name_width must be an integer from {NAME_WIDTH} to {len(str(MAX_SEED))}, got "
            f"{width!r}; repair or remove the manifest"
        )
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


def _dist_env() -> tuple[int, int, int]:
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


# options that apply to some models or samplers only, and their values when not given (None)
DEFAULTS = {"order": 3, "nsf": "er_sde_5", "quadrature": "exact", "derivatives": "published", "spacing": "time"}
DEFAULTS |= {"rho": 7.0, "shift": 1.0}
ERSDE_OPTIONS = ("order", "nsf", "quadrature", "derivatives")  # the er_sde sampler's
KIND_OPTIONS = {"rho": "ve", "shift": "flow", "spacing": "vp"}  # option -> the kind of model it applies to


def _check_options_apply(given: dict, im: ImageModel, sampler: str, model: str) -> None:
    """Refuse an option that does not apply to this model or sampler (one line naming it), rather than ignore it."""
    for name, kind in KIND_OPTIONS.items():
        if given.get(name) is not None and im.kind != kind:
            raise UsageError(f"--{name} applies to {kind} models; {model} is a {im.kind} model: leave --{name} out")
    for name in ERSDE_OPTIONS:
        if given.get(name) is not None and sampler != "er_sde":
            raise UsageError(f"--{name} applies to the er_sde sampler, not to {sampler!r}: leave --{name} out")


def _number(name: str, value) -> None:
    if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise UsageError(f"--{name} must be a positive number, got {value}")


def _prepare(model, seeds, sampling, *, outdir, force, batch, device, dtype, edm_repo, local_rank) -> dict:
    """Every check, before anything is written; raises UsageError/ValueError/FileNotFoundError/ImportError."""
    seed_ranges = parse_seeds(seeds)
    given = dict(sampling)  # None: not given (the default for the model's kind)
    sampling = {k: DEFAULTS[k] if v is None else v for k, v in sampling.items()}
    nsf_spec, sampling["nsf"] = sampling["nsf"], parse_nsf(sampling["nsf"])
    if sampling["steps"] < 1 or batch < 1:
        raise UsageError(f"--steps and --batch must be >= 1, got {sampling['steps']} and {batch}")
    if sampling["steps"] > MAX_STEPS:
        raise UsageError(f"--steps must be at most {MAX_STEPS}, got {sampling['steps']}")
    _number("rho", given["rho"])
    _number("shift", given["shift"])
    known = sorted({name for kind in MODEL_KINDS for name in available_samplers(kind)})
    if sampling["sampler"] not in known:
        raise UsageError(f"unknown sampler {sampling['sampler']!r}; available: {', '.join(known)}")
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if edm_repo is not None and not str(model).endswith(".pkl"):
        raise UsageError(f"--edm-repo applies to EDM network pickles (.pkl); {model} is not one: leave it out")
    if not str(outdir).strip():
        raise UsageError("--outdir must name a folder, got ''")
    outdir = Path(outdir)
    check_outdir(outdir)
    check_capacity(outdir, seed_ranges.count)
    im = load_image_model(model, device, edm_repo=edm_repo, local_rank=local_rank)
    _check_options_apply(given, im, sampling["sampler"], model)
    try:
        sampler = image_sampler(im, **sampling, dtype=DTYPES[dtype])  # its schedule and step plan, once
    except ValueError as e:
        if im.kind == "flow" and given["shift"] is not None and "sigmas" in str(e):
            raise UsageError(f"--shift {given['shift']} gives no usable flow schedule ({e})") from None
        raise
    probe_model(im, im.device, DTYPES[dtype])
    settings = pixel_settings(im, sampling, nsf_spec, dtype)
    width = check_manifest(outdir, settings, seed_ranges, force)
    return dict(seeds=seed_ranges, sampler=sampler, im=im, outdir=outdir, settings=settings, width=width)


REPLACED = "replaced"  # DIR/replaced/: files under an image's name that were not a valid image of this run


def move_aside(path: Path) -> Path | None:
    """Move ``path`` into ``DIR/replaced/`` (never delete a file: an invalid one may be somebody's), under its own
    name, or ``NAME.1``, ``NAME.2``, … when taken; None if another job moved it first."""
    dest_dir = path.parent / REPLACED
    dest_dir.mkdir(exist_ok=True)
    for k in range(1_000_000):
        dest = dest_dir / (path.name if k == 0 else f"{path.name}.{k}")
        try:
            os.link(path, dest)  # fails if taken: no file is ever overwritten
        except FileExistsError:
            continue
        except FileNotFoundError:
            return None
        path.unlink(missing_ok=True)
        return dest
    raise OSError(f"cannot move {path} aside: {dest_dir} is full")


def _batches(seeds, outdir: Path, width: int, shape, batch: int, counts: dict):
    """Lazily: lists of at most ``batch`` seeds whose PNG is missing or invalid (counted in ``counts``); an invalid
    file is moved aside first (:func:`move_aside`)."""
    chunk = []
    for s in seeds:
        path = outdir / png_name(s, width)
        ok = png_ok(path, shape)
        if ok:
            counts["skipped"] += 1
            continue
        if ok is False:
            counts["invalid"] += move_aside(path) is not None
        chunk.append(s)
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def sample_to_folder(*, outdir, model: str = "digits", seeds: str = "0-63", steps: int = 20, sampler: str = "er_sde",
                     order: int | None = None, nsf: str | None = None, quadrature: str | None = None,
                     derivatives: str | None = None, spacing: str | None = None, rho: float | None = None,
                     shift: float | None = None, force: bool = False, batch: int = 64, device: str = "auto",
                     dtype: str = "float64", edm_repo=None, throttle: float = 0.0) -> dict:  # fmt: skip
    """The sample job (module docstring): every image of ``seeds`` (this rank's share under torchrun) that is not
    in ``outdir`` yet, as ``{seed:0Wd}.png``. ``order``, ``nsf``, ``quadrature``, ``derivatives`` (the er_sde
    sampler's), ``rho`` (VE models), ``shift`` (flow models) and ``spacing`` (VP models) left at None take their
    defaults (:data:`DEFAULTS`); given for a sampler or model they do not apply to, they are refused. A file under
    an image's name that is not a valid image of this run is moved to ``DIR/replaced/``, never deleted. Returns the
    counts (written, invalid ones regenerated, skipped, stale temporaries removed) and the seconds spent. Raises
    :class:`UsageError` (or ValueError, FileNotFoundError, ImportError) before anything is written, :class:`WriteError`
    when writing fails."""
    rank, world, local_rank = _dist_env()
    sampling = dict(steps=steps, sampler=sampler, order=order, nsf=nsf, quadrature=quadrature, derivatives=derivatives,
                    spacing=spacing, rho=rho, shift=shift)  # fmt: skip
    p = _prepare(model, seeds, sampling, outdir=outdir, force=force, batch=batch, device=device, dtype=dtype,
                 edm_repo=edm_repo, local_rank=local_rank)  # fmt: skip
    outdir, im, width = p["outdir"], p["im"], p["width"]
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        write_manifest(outdir, {**p["settings"], "name_width": width}, replace=force)
        stale = remove_stale_temporaries(outdir)
    except UsageError:
        raise
    except OSError as e:
        raise WriteError(f"cannot write to outdir {outdir}: {e.strerror or e}") from e

    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        dev = p["im"].device
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")

    seed_ranges = p["seeds"]
    n_mine = max(0, -(-(len(seed_ranges) - rank) // world))
    counts = {"skipped": 0, "invalid": 0, "written": 0, "stale_removed": stale}
    t0 = time.perf_counter()
    bar = tqdm(total=n_mine, unit="img", disable=rank != 0, desc=f"rank 0/{world}")
    try:
        for chunk in _batches(seed_ranges.shard(rank, world), outdir, width, im.shape, batch, counts):
            x = p["sampler"](chunk)
            for s, img in zip(chunk, to_uint8(x).cpu()):
                write_png_atomic(outdir / png_name(s, width), img)
                counts["written"] += 1
            bar.n = counts["written"] + counts["skipped"]
            bar.refresh()
            if throttle:
                time.sleep(throttle)
    except OSError as e:
        where = f" {e.filename}" if e.filename else ""
        hint = " (disk full)" if e.errno == errno.ENOSPC else ""
        raise WriteError(f"writing to outdir {outdir} failed{hint}:{where} {e.strerror or e}") from e
    finally:
        bar.close()
    dt = time.perf_counter() - t0
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return dict(counts, seconds=dt, rank=rank, world=world, seeds=len(seed_ranges), outdir=str(outdir))
