"""CLI layer: commands run with their defaults in a fresh clone leave `git status --porcelain` empty (quick
presets write to the git-ignored figures/quick, retraining to the git-ignored out/train)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CPU = ["--device", "cpu"]
COMMANDS = [
    ["bench", "quality", "--quick", *CPU],
    ["bench", "images", "--quick", "--no-speed", *CPU],
    ["bench", "flow", "--quick", *CPU],
    ["third-order", "--preset", "quick"],
    ["flow-expansion", "--preset", "quick"],
    ["train-toy", "--problem", "ring_2d", "--steps", "2", "--batch", "16", *CPU],
    ["train-digits", "--steps", "2", "--batch", "8", *CPU],
    ["train-digits", "--objective", "flow", "--steps", "2", "--batch", "8", *CPU],
    ["train-digit-features", "--steps", "2", *CPU],
]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs git and a checkout")
def test_commands_with_defaults_leave_a_fresh_clone_clean(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PYTHONPATH": str(clone), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    for argv in COMMANDS:
        r = subprocess.run(
            [sys.executable, "-m", "ersde_theory", *argv],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, (argv, r.stderr[-2000:])
        status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
        assert status == "", (argv, status)
    assert (clone / "figures/quick/bench_images.md").is_file() and (clone / "figures/quick/third_order.md").is_file()
    assert (clone / "out/train/digits_unet.pt").is_file() and (clone / "out/train/digits_flow_unet.pt").is_file()
    assert (clone / "figures/quick/bench_flow.md").is_file() and (clone / "figures/quick/bench_flow.png").is_file()
    assert (clone / "figures/quick/flow_expansion.md").is_file()
