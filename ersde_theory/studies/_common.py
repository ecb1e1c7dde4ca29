"""Pieces shared by the image benches (``bench images``, ``bench flow``, ``bench fmnist``): the checks of their
NFE and seed-block arguments, made before anything runs, and the writing of their report."""

from __future__ import annotations

from ..evaluation.reports import write_report


def check_nfes(nfes) -> tuple[int, ...]:
    """The NFE values as a tuple of ints; ValueError unless there is at least one and each is >= 2."""
    nfes = tuple(int(k) for k in nfes)
    if not nfes or min(nfes) < 2:
        raise ValueError(f"NFE values must be >= 2, got {list(nfes)}")
    return nfes


def check_blocks(blocks: int, n_per_block: int, batch: int) -> None:
    """ValueError unless there are >= 2 seed blocks of >= 2 images, sampled in batches of >= 1."""
    if blocks < 2 or n_per_block < 2 or batch < 1:
        raise ValueError(f"need >= 2 blocks of >= 2 images and a batch >= 1, got {blocks}, {n_per_block}, {batch}")


def publish(outdir, stem: str, res: dict, markdown: str, log) -> None:
    """Write the bench's report ``outdir/stem.json``/``.md`` (:func:`~ersde_theory.evaluation.reports.write_report`)
    and, given a ``log``, log its Markdown."""
    write_report(outdir, stem, res, markdown)
    if log:
        log(markdown)
