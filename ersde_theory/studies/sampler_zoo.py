"""Compatibility re-export: the sampler registry lives in :mod:`ersde_theory.evaluation.samplers`."""

from ..evaluation.samplers import SAMPLERS, SIGMA_MAX, SIGMA_MIN, Sampler, run_sampler, schedule_for  # noqa: F401
