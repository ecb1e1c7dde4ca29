"""Images layer, the sample command (images/sample_cli.py): under torchrun (2 gloo processes on CPU) killed
mid-run, resumed with a different rank count, then compared with a single-process computation of the same seeds;
bad input fails with exit code 2 and leaves nothing behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ersde_theory.cli import main
from ersde_theory.images.digits import to_uint8
from ersde_theory.images.fid import DigitFD
from ersde_theory.images.sampling import load_image_model, sample_images

ROOT = Path(__file__).resolve().parents[2]
SEEDS, STEPS = list(range(20)), 4

pytestmark = pytest.mark.usefixtures("one_thread")


def _pngs(d: Path):
    return sorted(p.name for p in d.iterdir())


def _sample_args(out: Path, batch: int) -> list[str]:
    """``sample`` arguments for the digits model, seeds 0-19, on the CPU."""
    return [
        "sample",
        "--model",
        "digits",
        "--seeds",
        "0-19",
        "--steps",
        str(STEPS),
        "--batch",
        str(batch),
        "--outdir",
        str(out),
        "--device",
        "cpu",
    ]


def test_torchrun_kill_resume_no_duplicates_nothing_lost_same_images(tmp_path):
    out = tmp_path / "imgs"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "ersde_theory",
        *_sample_args(out, 2),
        "--throttle",
        "0.4",
    ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    t0 = time.time()
    try:
        while time.time() - t0 < 120:
            if out.is_dir() and len([p for p in out.glob("*.png")]) >= 4:
                break
            if proc.poll() is not None:
                pytest.fail(f"torchrun exited early:\n{proc.stdout.read().decode()[-3000:]}")
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # kill launcher and both workers mid-run
    finally:
        proc.wait(timeout=30)
    first = [n for n in _pngs(out) if n.endswith(".png") and not n.startswith(".")]
    assert 4 <= len(first) < len(SEEDS), first
    written_first = {n: (out / n).stat().st_mtime_ns for n in first}

    # one thread here as in the workers (torchrun sets OMP_NUM_THREADS=1): the same kernels
    assert main(_sample_args(out, 3)) == 0  # resume with 1 rank
    im = load_image_model("digits")
    ref = to_uint8(sample_images(im, SEEDS, steps=STEPS)).numpy()  # one batch of 20
    names = _pngs(out)
    assert names == [f"{s:06d}.png" for s in SEEDS]  # nothing lost, nothing else (no temporary files left)
    assert all((out / n).stat().st_mtime_ns == m for n, m in written_first.items())  # not rewritten
    got = np.stack([np.asarray(Image.open(out / n)) for n in names])[:, None]
    np.testing.assert_array_equal(got, ref)  # same pixels whatever the ranks, batches and resume
    assert np.isfinite(DigitFD()(out))  # FD_digits reads the PNG folder


def test_sample_cli_bad_input_leaves_nothing_behind(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sample", "--seeds", "9-2", "--outdir", str(out)]) == 2
    assert "seed range" in capsys.readouterr().err and not out.exists()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["sample", "--seeds", "0-1", "--outdir", str(blocker / "sub")]) == 2
    assert "not writable" in capsys.readouterr().err and not (blocker / "sub").exists()
    assert main(["sample", "--model", str(tmp_path / "missing.pt"), "--seeds", "0", "--outdir", str(out)]) == 2
    assert "no digits UNet checkpoint" in capsys.readouterr().err and not out.exists()
    assert main(["sample", "--nsf", "banana(", "--seeds", "0", "--outdir", str(out)]) == 2
    assert not out.exists()
