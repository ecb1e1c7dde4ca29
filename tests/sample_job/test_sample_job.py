"""The sample job (ersde_theory/sample_job.py, the sample command) under faults: a 2-rank torchrun whose launcher and
workers are all killed mid-run, then resumed with one process; kill -9 of a single process; truncated, empty and
wrong-size PNGs; a resume with other settings; two jobs sharing an outdir; a full disk; bad input. Every finished
folder must hold each seed exactly once, no temporary file, and the bytes of a clean single-process run."""

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ersde_theory.cli import main
from ersde_theory.evaluation.image_metrics import DigitFD
from tests.helpers import assert_refused_before_writing

ROOT = Path(__file__).resolve().parents[2]
SEEDS, STEPS = list(range(20)), 4
NAMES = [f"{s:06d}.png" for s in SEEDS]

pytestmark = pytest.mark.usefixtures("one_thread")


def _args(out: Path, batch: int = 20, seeds: str = "0-19", *extra) -> list[str]:
    """``sample`` arguments for the digits model on the CPU."""
    return [
        "sample",
        *("--model", "digits", "--seeds", seeds, "--steps", str(STEPS), "--batch", str(batch)),
        *("--outdir", str(out), "--device", "cpu", *extra),
    ]


def _env() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
    }


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def _bytes(d: Path) -> dict[str, bytes]:
    return {n: (d / n).read_bytes() for n in _files(d) if n.endswith(".png")}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, bytes]:
    """The PNG bytes of a clean single-process run of seeds 0-19 (one batch)."""
    out = tmp_path_factory.mktemp("clean") / "imgs"
    assert main(_args(out)) == 0
    assert _files(out) == [*NAMES, "manifest.json"]
    return _bytes(out)


def _assert_complete(out: Path, clean: dict) -> None:
    assert _files(out) == [*NAMES, "manifest.json"]  # each seed exactly once, no temporary files
    assert _bytes(out) == clean  # byte for byte the clean run


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _gone(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _wait_for_pngs(proc, out: Path, n: int, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if out.is_dir() and len(list(out.glob("[0-9]*.png"))) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run exited early:\n{proc.stdout.read().decode()[-3000:]}")
        time.sleep(0.05)
    pytest.fail("no images after {timeout}s")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the torchrun workers through /proc")
def test_torchrun_kill_every_process_then_resume_with_one(tmp_path, clean):
    out = tmp_path / "imgs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ersde_theory"]
    proc = subprocess.Popen(
        [*cmd, *_args(out, 2), "--throttle", "0.5"],
        env=_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_pngs(proc, out, 4)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers  # the launcher's two worker processes
        for pid in [*workers, proc.pid]:  # workers first: they run in their own sessions
            os.kill(pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    t0 = time.time()
    while not all(_gone(p) for p in workers) and time.time() - t0 < 10:
        time.sleep(0.05)
    assert all(_gone(p) for p in workers), "a torchrun worker survived the kill"
    time.sleep(1.0)  # nothing may be written any more
    first = _bytes(out)
    assert 4 <= len(first) < len(SEEDS), sorted(first)  # killed mid-run
    assert _bytes(out) == first
    assert all(clean[n] == b for n, b in first.items())  # what was written is complete

    assert main(_args(out, 3)) == 0  # resume with 1 process and another batch size
    _assert_complete(out, clean)
    assert np.isfinite(DigitFD()(out))  # FD_digits reads the folder


def test_kill_9_of_a_single_process_then_resume(tmp_path, clean, capsys):
    out = tmp_path / "imgs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ersde_theory", *_args(out, 2), "--throttle", "0.5"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_pngs(proc, out, 4)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    # what a kill during a write leaves: a temporary file of the dead process
    (out / f".000019.png.{_host()}.{proc.pid}.tmp").write_bytes(b"\x89PNG partial")
    n_first = len(_bytes(out))
    assert 4 <= n_first < len(SEEDS)
    assert main(_args(out, 7)) == 0
    assert f"wrote {len(SEEDS) - n_first} images" in capsys.readouterr().out
    _assert_complete(out, clean)


def _host() -> str:
    from ersde_theory.sample_job import HOST

    return HOST


def test_resume_regenerates_truncated_empty_and_wrong_size_pngs(tmp_path, clean, capsys):
    """Invalid files under an image's name are regenerated, and never destroyed: each is moved to DIR/replaced."""
    from PIL import Image

    out = tmp_path / "imgs"
    assert main(_args(out)) == 0
    capsys.readouterr()
    (out / "000003.png").write_bytes((out / "000003.png").read_bytes()[:10])  # truncated
    (out / "000007.png").write_bytes(b"")  # emptied
    Image.new("L", (4, 4)).save(out / "000011.png")  # a valid PNG of the wrong size
    Image.new("RGB", (8, 8)).save(out / "000012.png")  # the wrong mode
    before = {n: (out / n).read_bytes() for n in ("000003.png", "000007.png", "000011.png", "000012.png")}
    assert main(_args(out)) == 0
    assert "wrote 4 images (4 invalid ones regenerated after moving them to" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (out / "replaced").iterdir()} == before
    (out / "replaced").rename(tmp_path / "kept")
    _assert_complete(out, clean)


def test_force_never_deletes_a_users_file(tmp_path, clean, capsys):
    """--force adopts the valid PNGs of a folder without a manifest; a user's PNG of another size under an image's
    name is moved aside (twice: the second copy gets a suffix), never overwritten."""
    from PIL import Image

    out = tmp_path / "imgs"
    out.mkdir()
    Image.new("L", (5, 3), 200).save(out / "000001.png")  # a user's image: (H, W) = (3, 5), not the digits' 8×8
    users = (out / "000001.png").read_bytes()
    assert main([*_args(out), "--force"]) == 0
    assert (out / "replaced" / "000001.png").read_bytes() == users
    Image.new("L", (8, 3), 100).save(out / "000001.png")
    second = (out / "000001.png").read_bytes()
    assert main(_args(out)) == 0
    assert (out / "replaced" / "000001.png.1").read_bytes() == second and "regenerated" in capsys.readouterr().out
    (out / "replaced").rename(tmp_path / "kept")
    _assert_complete(out, clean)


def test_resume_with_other_settings_is_refused_then_forced(tmp_path, capsys):
    out = tmp_path / "imgs"
    assert main([*_args(out, seeds="0-3")[:-4], "--outdir", str(out), "--device", "cpu"]) == 0
    before = _bytes(out)
    argv = _args(out, seeds="0-7")
    argv[argv.index("--steps") + 1] = "3"
    capsys.readouterr()
    assert main([*argv, "--nsf", "sde"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings" in err
    assert "steps: 4 -> 3" in err and "nsf: 'er_sde_5' -> 'sde'" in err
    assert _bytes(out) == before  # nothing written
    assert main([*argv, "--nsf", "sde", "--force"]) == 0  # --force overrides and rewrites the manifest
    assert _files(out) == [f"{s:06d}.png" for s in range(8)] + ["manifest.json"]
    assert '"steps": 3' in (out / "manifest.json").read_text() and _bytes(out)["000000.png"] == before["000000.png"]


def test_seeds_batch_and_ranks_may_differ_between_runs(tmp_path, clean):
    out = tmp_path / "imgs"
    assert main(_args(out, 3, "5-9,0")) == 0
    assert main(_args(out, 8, "0-19")) == 0
    _assert_complete(out, clean)


def test_pngs_without_a_manifest_are_not_adopted_silently(tmp_path, clean, capsys):
    out = tmp_path / "imgs"
    out.mkdir()
    (out / "000000.png").write_bytes(clean["000000.png"])
    assert main(_args(out)) == 2 and "no manifest.json" in capsys.readouterr().err
    assert _files(out) == ["000000.png"]
    assert main([*_args(out), "--force"]) == 0
    _assert_complete(out, clean)


def test_cleanup_removes_only_temporaries_of_processes_that_are_gone(tmp_path, clean):
    out = tmp_path / "imgs"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = out / f".000009.png.{_host()}.{dead.pid}.tmp"
        other_job = out / f".000009.png.{_host()}.{live.pid}.tmp"  # another job's write in flight
        other_host = out / f".000009.png.elsewhere.{dead.pid}.tmp"  # a process on another machine
        for f in (stale, other_job, other_host):
            f.write_bytes(b"x")
        assert main(_args(out)) == 0
        assert not stale.exists() and other_job.exists() and other_host.exists()
    finally:
        live.kill()
        live.wait()
    other_job.unlink()
    other_host.unlink()
    _assert_complete(out, clean)


def test_two_jobs_sharing_an_outdir(tmp_path, clean):
    out = tmp_path / "imgs"
    cmd = [sys.executable, "-m", "ersde_theory"]
    jobs = [
        subprocess.Popen([*cmd, *_args(out, b)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for b in (2, 3)
    ]
    logs = [j.communicate(timeout=120)[0].decode() for j in jobs]
    assert [j.returncode for j in jobs] == [0, 0], logs
    _assert_complete(out, clean)


def test_full_disk_one_line_error_and_no_partial_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "imgs"
    import ersde_theory.sample_job as sampling

    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 3:  # manifest, then two images; the third write finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(sampling.os, "fsync", fsync)
    assert main(_args(out)) == 1
    err = capsys.readouterr().err
    assert _one_error_line(err).endswith("failed (disk full): No space left on device")
    assert _files(out) == ["000000.png", "000001.png", "manifest.json"]  # no partial file, no temporary file


def _one_error_line(err: str) -> str:
    """The one ``error:`` line of stderr (progress bars aside), with no traceback."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_full_disk_on_a_small_tmpfs(tmp_path, clean):
    """The disk fills up while the job runs (a filler takes the rest of a 200 KiB tmpfs)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=200k tmpfs {mnt}"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (unshare -rm: {probe.stderr.strip() or probe.returncode})")
    out = mnt / "imgs"
    script = f"""
mount -t tmpfs -o size=200k tmpfs {mnt} || exit 9
{sys.executable} -m ersde_theory {" ".join(_args(out, 2))} --throttle 0.3 2>{tmp_path}/err &
job=$!
i=0; while [ "$(ls {out} 2>/dev/null | grep -c 'png$')" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
dd if=/dev/zero of={mnt}/filler bs=4k 2>/dev/null
wait $job; echo rc=$?
rm {mnt}/filler
cd {out} && for f in * .*; do [ -f "$f" ] && echo "$f"; done
for f in [0-9]*.png; do cat "$f" > {tmp_path}/copy_$f; done
"""
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=_env(), capture_output=True, text=True, timeout=150)
    err = (tmp_path / "err").read_text()
    assert "rc=1" in r.stdout, (r.stdout, r.stderr, err)
    assert "No space left on device" in _one_error_line(err)
    listed = r.stdout.splitlines()[1:]
    pngs = sorted(n for n in listed if n.endswith(".png"))
    assert "manifest.json" in listed and not [n for n in listed if n.endswith(".tmp")], listed
    assert 2 <= len(pngs) < len(SEEDS) and pngs == NAMES[: len(pngs)]
    for n in pngs:  # every file that made it is complete
        assert (tmp_path / f"copy_{n}").read_bytes() == clean[n]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--seeds", "9-2"], "seed range"),
        (["--seeds", "9223372036854775808"], "exceeds the largest seed 2^63 - 1"),
        (["--seeds", "0-99999999999"], "can hold at most"),
        (["--nsf", "1/sigma"], "not admissible"),
        (["--nsf", "banana("], "unknown noise scale function 'banana('"),
        (["--rho", "0"], "--rho must be a positive number, got 0.0"),
        (["--rho", "nan"], "--rho must be a positive number, got nan"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--steps", "0"], "--steps and --batch must be >= 1"),
        (["--sampler", "nope"], "unknown sampler 'nope'"),
    ],
)
def test_bad_input_one_line_rc_2_nothing_created(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    err = assert_refused_before_writing([*_args(out, seeds="0-1"), *extra], out, message, capsys)
    assert message in _one_error_line(err) and err.count("\n") == 1


def test_bad_model_file_and_outdir(tmp_path, capsys):
    out = tmp_path / "out"
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    for model, message in ((tmp_path / "missing.pt", "no digits UNet checkpoint"), (corrupt, "not a readable")):
        assert main([*_args(out, seeds="0"), "--model", str(model)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and not out.exists()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(_args(blocker / "sub", seeds="0-1")) == 2
    assert "not writable" in capsys.readouterr().err and not (blocker / "sub").exists()
    assert main(_args(blocker, seeds="0-1")) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "model, extra, message",
    [
        ("digits", ["--shift", "2"], "--shift applies to flow models; digits is a ve model"),
        ("digits-flow", ["--rho", "5"], "--rho applies to ve models; digits-flow is a flow model"),
        ("digits", ["--spacing", "logsnr"], "--spacing applies to vp models; digits is a ve model"),
        ("digits", ["--sampler", "heun", "--nsf", "sde"], "--nsf applies to the er_sde sampler, not to 'heun'"),
        ("digits-flow", ["--sampler", "flow_euler", "--order", "2"], "--order applies to the er_sde sampler"),
        ("digits", ["--edm-repo", "/tmp"], "--edm-repo applies to EDM network pickles"),
        ("digits", ["--seeds", "0-9223372036854775807"], "can hold at most"),
        ("digits-flow", ["--shift", "1e308"], "--shift 1e+308 gives no usable flow schedule"),
        ("digits-flow", ["--shift", "inf"], "--shift must be a positive number, got inf"),
        ("diffusers:/nonexistent", [], "/nonexistent is not a folder"),
    ],
)
def test_options_that_do_not_apply_and_bad_values_are_refused(tmp_path, capsys, model, extra, message):
    """An option that does not apply to the model or sampler is refused, not ignored; every bad command line is
    one line and exit code 2, with nothing created."""
    out = tmp_path / "out"
    assert main([*_args(out, seeds="0-1"), "--model", model, *extra]) == 2
    err = capsys.readouterr().err
    assert message in _one_error_line(err) and err.count("\n") == 1, err
    assert not out.exists()


def test_an_unwritable_or_pseudo_file_system_is_named(capsys):
    if not Path("/proc/self").exists():
        pytest.skip("no /proc")
    assert main(_args(Path("/proc/no_such_dir/x"), seeds="0-1")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "not writable" in line and "seed range" not in line


@pytest.mark.parametrize("width", ['"six"', "-3", "true", "40"])
def test_a_hand_edited_manifest_names_the_field_and_the_file(tmp_path, capsys, width):
    out = tmp_path / "imgs"
    assert main(_args(out, seeds="0-1")) == 0
    m = out / "manifest.json"
    m.write_text(re.sub(r'"name_width": \d+', f'"name_width": {width}', m.read_text()))
    capsys.readouterr()
    assert main(_args(out, seeds="0-1")) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "name_width" in line and str(m) in line


def test_png_size_is_checked_as_height_by_width(tmp_path):
    """png_ok reads PIL's (width, height) against the (C, H, W) shape: a 3 × 5 image is not a 5 × 3 one."""
    from PIL import Image

    from ersde_theory.sample_job import png_ok

    Image.new("L", (5, 3)).save(tmp_path / "a.png")  # PIL: width 5, height 3
    assert png_ok(tmp_path / "a.png", (1, 3, 5)) is True and png_ok(tmp_path / "a.png", (1, 5, 3)) is False
    assert png_ok(tmp_path / "a.png", (3, 3, 5)) is False and png_ok(tmp_path / "none.png", (1, 3, 5)) is None


@pytest.mark.parametrize(
    "model, change, diff",
    [
        ("digits", ["--steps", "3"], "steps: 4 -> 3"),
        ("digits", ["--sampler", "heun"], "sampler: 'er_sde' -> 'heun'"),
        ("digits", ["--order", "2"], "order: 3 -> 2"),
        ("digits", ["--nsf", "sde"], "nsf: 'er_sde_5' -> 'sde'"),
        ("digits", ["--quadrature", "official"], "quadrature: 'exact' -> 'official'"),
        ("digits", ["--derivatives", "corrected"], "derivatives: 'published' -> 'corrected'"),
        ("digits", ["--rho", "5"], "schedule:"),
        ("digits", ["--dtype", "float32"], "dtype: 'float64' -> 'float32'"),
        ("digits-flow", ["--shift", "3"], "schedule:"),
    ],
)
def test_the_manifest_compares_every_setting(tmp_path, capsys, model, change, diff):
    out = tmp_path / "imgs"
    argv = [*_args(out, seeds="0-1"), "--model", model]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, *change]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "other settings" in line and diff in line


def test_capacity_counts_free_inodes_and_the_images_already_there(tmp_path, capsys, monkeypatch):
    import ersde_theory.sample_job as job

    out = tmp_path / "imgs"
    assert main(_args(out, seeds="0-1")) == 0  # two images and a manifest already there
    real = os.statvfs(out)
    fake = os.statvfs_result((real.f_bsize, real.f_frsize, 10**9, 10**9, 10**9, 10**6, 3, 3, 0, 255))
    monkeypatch.setattr(job.os, "statvfs", lambda p: fake)  # 3 free inodes, plenty of blocks
    capsys.readouterr()
    assert main(_args(out, seeds="0-5")) == 0  # 6 seeds ≤ 3 free + 3 entries there
    capsys.readouterr()
    assert main(_args(out, seeds="0-12")) == 2  # 13 seeds > 3 free + 7 entries (6 images, the manifest)
    line = _one_error_line(capsys.readouterr().err)
    assert "can hold at most 10 images (3 free inodes + 7 existing)" in line


def test_two_nodes_shard_by_global_rank(tmp_path, clean):
    """Two torchrun nodes of one process each on 127.0.0.1: both have local rank 0, global ranks 0 and 1; sharding by
    the global rank splits the seeds between them, so the two together write every seed exactly once."""
    import socket

    out = tmp_path / "imgs"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1"]
    cmd += ["--master_addr=127.0.0.1", f"--master_port={port}"]
    procs = [
        subprocess.Popen(
            [*cmd, f"--node_rank={k}", "-m", "ersde_theory", *_args(out, 5)],
            env=_env(),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for k in (0, 1)
    ]
    logs = [p.communicate(timeout=240)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert "2 rank(s), 20 seeds in total" in logs[0]
    _assert_complete(out, clean)
