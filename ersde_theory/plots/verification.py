"""Registers the verification report (markdown + JSON, no figure) with the figures command."""

from ..studies.verification import report_data, write_verification_report
from .registry import report_only

report_only("verification_report", study=report_data, report=write_verification_report)
