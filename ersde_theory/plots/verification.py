"""Registers the verification report (markdown + JSON) with the figures command."""

from ..studies.verification import report_data, write_verification_report
from .registry import figure


@figure("verification_report", study=report_data)
def verification_report(data, outdir):
    return write_verification_report(outdir, data)
