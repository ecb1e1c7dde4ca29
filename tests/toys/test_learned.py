"""Toys layer, learned denoisers (toys/learned.py): the shipped MLP denoisers load, are close to the exact
mixture denoiser but not equal to it, and training reduces the denoiser error."""

import math

import pytest

from ersde_theory import ring_2d

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "problem,bounds",
    [
        # stated bounds on the RMS error per coordinate against the exact denoiser (about 1.5x the shipped values)
        ("ring_2d", {"0.1": 0.015, "0.5": 0.06, "2": 0.07}),
        ("image_like_64d", {"0.1": 0.05, "0.5": 0.12, "2": 0.1}),
    ],
)
def test_learned_denoiser_loads_and_is_close_but_not_exact(problem, bounds):
    from ersde_theory.toys.learned import DATA_DIR, denoiser_error, load_learned
    from ersde_theory.toys.problems import get_problem

    model = load_learned(problem)
    meta = model.meta
    assert meta["command"].startswith("python -m ersde_theory train-toy") and "seed" in meta
    assert math.isfinite(meta["final_loss"]) and (DATA_DIR / f"{problem}_mlp.pt").stat().st_size < 1_000_000
    err = denoiser_error(model, get_problem(problem), sigmas=[float(s) for s in bounds], n=4000, seed=5)
    for s, bound in bounds.items():
        assert 1e-4 < err[s]["rms"] < bound, (s, err[s])
    with pytest.raises(FileNotFoundError, match="train-toy"):
        load_learned(problem, data_dir=DATA_DIR / "missing")


def test_training_reduces_the_denoiser_error():
    from ersde_theory.toys.learned import LearnedDenoiser, denoiser_error, train_denoiser

    gm = ring_2d()
    errs = [
        denoiser_error(
            LearnedDenoiser(train_denoiser("ring_2d", steps=steps, batch=512, seed=1, log=None)[0]),
            gm,
            sigmas=(10.0,),
            n=2000,
        )["10"]["rms"]
        for steps in (1, 500)
    ]
    assert errs[1] < 0.3 * errs[0], errs
