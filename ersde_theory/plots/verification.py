"""Registers the verification report (markdown + JSON) with the figures command."""

from ..studies.verification import write_report
from .registry import figure


@figure("verification_report")
def verification_report(outdir):
    return write_report(outdir)
