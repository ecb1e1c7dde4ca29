"""Pieces shared by every sampler: noise sources, per-sample generators, output checks."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import TypedDict

import torch
from tqdm import trange

from ..coefficients.ersde import validate_sigmas

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover  (annotations only; typing_extensions comes with torch)
    from typing_extensions import Unpack

__all__ = ["Generator", "SamplerOptions", "RunOptions", "SamplerRun", "Unpack", "make_noise", "check_model_output"]
__all__ += ["check_x", "check_nonneg", "check_s_noise", "check_generator", "ModelTimes"]

Generator = torch.Generator | Sequence[torch.Generator] | None
CHECK_FINITE = ("end", "step", "none")


def check_generator(generator, batch: int):
    """``generator`` checked: None, one ``torch.Generator``, or a list of them, one per sample and each its own
    object (a generator repeated in the list would draw dependent streams); ValueError naming the argument."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, str | bytes) or not hasattr(generator, "__iter__"):
        raise ValueError(f"generator must be a torch.Generator or a list of them, got {type(generator).__name__}")
    gens = list(generator)
    bad = [(k, type(g).__name__) for k, g in enumerate(gens) if not isinstance(g, torch.Generator)]
    if bad:
        k, name = bad[0]
        raise ValueError(f"generator must be a torch.Generator or a list of them; entry {k} is {name}")
    if len(gens) != batch:
        raise ValueError(f"got {len(gens)} generators for a batch of {batch} samples")
    first = {}
    for k, g in enumerate(gens):
        if id(g) in first:
            raise ValueError(
                f"generator list repeats one torch.Generator (entries {first[id(g)]} and {k}): give each sample its own"
            )
        first[id(g)] = k
    return gens


def make_noise(
    x: torch.Tensor, generator: Generator, noise_sampler: Callable | None, sigmas_for_sampler
) -> Callable[[int], torch.Tensor]:
    """Return ``noise(i) -> N(0, I)`` shaped like ``x`` for step i.

    ``noise_sampler(sigma, sigma_next)``, when given, is the only source of noise. Otherwise a list of
    generators (one per sample) draws sample b from ``generator[b]`` alone, so sample b does not depend on
    the batch size; one generator (or None: torch's global RNG) draws the whole batch.
    """
    if noise_sampler is not None:
        if generator is not None:
            raise ValueError("pass either noise_sampler or generator, not both")

        def noise(i: int) -> torch.Tensor:
            return _checked_output(noise_sampler(sigmas_for_sampler[i], sigmas_for_sampler[i + 1]), x, "noise_sampler")

        return noise
    if generator is None or isinstance(generator, torch.Generator):

        def noise(i: int) -> torch.Tensor:
            dev = generator.device if generator is not None else x.device
            return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=dev).to(x.device)

        return noise
    gens = check_generator(generator, x.shape[0])

    def noise(i: int) -> torch.Tensor:
        return torch.stack([torch.randn(x.shape[1:], generator=g, dtype=x.dtype, device=g.device) for g in gens]).to(
            x.device
        )

    return noise


class ModelTimes:
    """The time input of a model per step: ``timesteps`` (N+1 entries like the sigmas) or the sigmas themselves,
    kept as host numbers. ``at(i)`` is t_i · ones(B) made by a device fill, so a GPU loop never copies from the
    host or waits for the device."""

    def __init__(self, timesteps, sigmas: list[float], x: torch.Tensor):
        if timesteps is None:
            self.t, self.dtype = list(sigmas), x.dtype
        else:
            t = torch.as_tensor(timesteps)
            if t.ndim != 1 or t.shape[0] != len(sigmas):
                raise ValueError(f"timesteps must have {len(sigmas)} entries like sigmas, got shape {tuple(t.shape)}")
            self.t, self.dtype = t.detach().cpu().tolist(), t.dtype
        self._shape, self._device = (x.shape[0],), x.device

    def at(self, i: int) -> torch.Tensor:
        return torch.full(self._shape, self.t[i], dtype=self.dtype, device=self._device)


def _checked_output(out, x: torch.Tensor, what: str) -> torch.Tensor:
    """``out`` as a floating tensor of x's shape, cast to x's dtype and device; ValueError otherwise."""
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{what} returned {type(out).__name__}, expected a floating-point torch.Tensor")
    if out.shape != x.shape:
        raise ValueError(f"{what} output has shape {tuple(out.shape)}, expected the shape of x {tuple(x.shape)}")
    if not out.is_floating_point():
        raise ValueError(f"{what} returned dtype {out.dtype}, expected a floating-point tensor")
    if out.device.type == "meta":
        raise ValueError(f"{what} returned a tensor on the meta device (shapes only, no values)")
    return out.to(dtype=x.dtype, device=x.device)


def check_model_output(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The model's output, checked (a floating tensor of x's shape) and cast to x's dtype and device."""
    return _checked_output(out, x, "model")


def check_state(x: torch.Tensor, mode: str, i: int | None = None, sigma: float | None = None) -> None:
    """Raise if ``x`` holds NaN/Inf. One device→host sync; called once at the end unless mode='step'."""
    if not bool(torch.isfinite(x).all()):
        where = f" after step {i} (sigma {sigma:.6g})" if i is not None else ""
        hint = "" if mode == "step" else "; rerun with check_finite='step' to locate the step"
        raise FloatingPointError(f"non-finite values (NaN or Inf) in the sampler state{where}{hint}")


def check_x(x: torch.Tensor, check_finite: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 1:
        raise ValueError("x must be a floating-point tensor with a leading batch dimension")
    if x.shape[0] == 0:
        raise ValueError(f"x is an empty batch (shape {tuple(x.shape)}): nothing to sample")
    if check_finite not in CHECK_FINITE:
        raise ValueError(f"check_finite must be one of {CHECK_FINITE}, got {check_finite!r}")


class RunOptions(TypedDict, total=False):
    """The project's keywords, keyword-only on every sampler (after k-diffusion's positional ones):

    ``generator``: one ``torch.Generator``, or a list with one per sample (a sample then depends only on its
    own generator, not on the batch); ``check_finite``: "end" (one check after the loop), "step" (after
    every step, naming the step and σ; one host sync per step) or "none".
    """

    generator: Generator
    check_finite: str


class SamplerOptions(RunOptions, total=False):
    """All keywords :class:`SamplerRun` takes: :class:`RunOptions` and k-diffusion's

    ``extra_args``: keywords passed on to every model call; ``callback``: called once per step with
    k-diffusion's ``dict(x, i, sigma, sigma_hat, denoised)``; ``disable``: no progress bar;
    ``noise_sampler(sigma, sigma_next)``: when given, the only source of N(0, I) noise.
    """

    noise_sampler: Callable | None
    callback: Callable | None
    disable: bool | None
    extra_args: dict | None


def check_nonneg(**values) -> None:
    """ValueError naming the first of ``values`` (name=value) that is not a finite number ≥ 0 (bools refused)."""
    for name, v in values.items():
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


def check_s_noise(s_noise) -> float:
    """``s_noise`` (the factor on the injected noise) as a float; ValueError unless a finite number ≥ 0."""
    check_nonneg(s_noise=s_noise)
    return float(s_noise)


class SamplerRun:
    """Everything a VE sampler loop needs, set up once from :class:`SamplerOptions`.

    ``sig``: the checked schedule as host floats (float64), so that the loop never reads a device value
    (``allow_repeats``: a repeated σ, a zero-length step, is accepted; the sampler must handle it);
    ``denoise(x, sigma)`` calls ``model(x, sigma * ones(B), **extra_args)`` and checks the output shape;
    ``noise(i)`` is N(0, I) for step i (see :func:`make_noise`); ``report(i, x, sigma_hat, denoised)``
    calls the callback with ``dict(x, i, sigma, sigma_hat, denoised)``; ``report`` / ``finish`` run
    the non-finite checks of ``check_finite``.
    """

    def __init__(
        self,
        model,
        x: torch.Tensor,
        sigmas,
        *,
        noise_sampler: Callable | None = None,
        generator: Generator = None,
        callback: Callable | None = None,
        disable: bool | None = None,
        check_finite: str = "end",
        extra_args: dict | None = None,
        allow_repeats: bool = False,
    ):
        check_x(x, check_finite)
        for name, value in (("callback", callback), ("noise_sampler", noise_sampler)):
            if value is not None and not callable(value):
                raise ValueError(f"{name} must be callable or None, got {type(value).__name__}")
        if extra_args is not None and not isinstance(extra_args, dict):
            raise ValueError(
                f"extra_args must be a dict of the model's keyword arguments, got {type(extra_args).__name__}"
            )
        if disable is not None and not isinstance(disable, bool | int):
            raise ValueError(f"disable must be a bool or None, got {type(disable).__name__}")
        self.sigmas = validate_sigmas(sigmas, allow_repeats=allow_repeats)
        self.sig = self.sigmas.tolist()
        self.sig_t = self._sig_t = torch.from_numpy(self.sigmas)
        self.disable = disable
        self._model, self._extra = model, extra_args or {}
        self._s_in = x.new_ones(x.shape[0])
        self._callback, self.check_finite = callback, check_finite
        self.noise = make_noise(x, generator, noise_sampler, self._sig_t)

    @classmethod
    def kdiffusion(
        cls, model, x: torch.Tensor, sigmas, extra_args, callback, disable, noise_sampler, options: dict
    ) -> SamplerRun:
        """The run of a sampler in k-diffusion's calling convention (its positional arguments and the
        :class:`RunOptions` ``options``), accepting repeated σ's (zero-length steps, which it must handle)."""
        return cls(
            model,
            x,
            sigmas,
            extra_args=extra_args,
            callback=callback,
            disable=disable,
            noise_sampler=noise_sampler,
            allow_repeats=True,
            **options,
        )

    @property
    def steps(self) -> int:
        return len(self.sig) - 1

    def range(self):
        """(i, σ_i, σ_{i+1}) for the steps i = 0 … N−1 (host floats), with a progress bar unless ``disable``."""
        for i in trange(self.steps, disable=self.disable):
            yield i, self.sig[i], self.sig[i + 1]

    def denoise(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return check_model_output(self._model(x, self._s_in * sigma, **self._extra), x)

    def evaluate(self, i: int, x: torch.Tensor, sigma_hat: float) -> torch.Tensor:
        """x_θ(x, σ̂) for step i, reported to the callback."""
        den = self.denoise(x, sigma_hat)
        self.report(i, x, sigma_hat, den)
        return den

    def report(self, i: int, x: torch.Tensor, sigma_hat: float, denoised: torch.Tensor) -> None:
        """Step i has started from state ``x``: with ``check_finite="step"``, check it (the result of step
        i − 1), then call the callback."""
        if self.check_finite == "step" and i > 0:
            check_state(x, "step", i - 1, self.sig[i])
        if self._callback is not None:
            self._callback(dict(x=x, i=i, sigma=self._sig_t[i], sigma_hat=sigma_hat, denoised=denoised))

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The final state, checked unless ``check_finite="none"``."""
        if self.check_finite == "step":
            check_state(x, "step", self.steps - 1, self.sig[-1])
        elif self.check_finite == "end":
            check_state(x, "end")
        return x
