"""Frequentist network meta-analysis as R's netmeta fits it (pure numpy/scipy; no I/O).

:func:`pairwise` / :func:`contrasts_from_frame` prepare contrasts, :func:`netmeta` fits the
common-effect and random-effects models (Rücker's graph-theoretical method with multi-arm
weights), :func:`decomp_design` splits Q within and between designs, :func:`netsplit` separates
direct from indirect evidence, :func:`pscores`, :func:`rankogram` and :func:`league_table` rank and
tabulate, :func:`contribution_matrix` and :func:`cinema` support GRADE (CINeMA) judgements.
"""

from follicle.synthesis.nma._pairwise import Contrasts, contrasts_from_frame, pairwise
from follicle.synthesis.nma.contrib import contribution_matrix, study_contributions
from follicle.synthesis.nma.decomp import Decomposition, decomp_design
from follicle.synthesis.nma.fit import ModelEstimates, NetworkMetaAnalysis, netmeta
from follicle.synthesis.nma.grade import ComparisonConfidence, DomainJudgement, cinema, confidence_table
from follicle.synthesis.nma.rank import league_table, pscores, rankogram
from follicle.synthesis.nma.spec import NMASpec, analyse, run_spec
from follicle.synthesis.nma.split import netsplit

__all__ = [
    "Contrasts", "pairwise", "contrasts_from_frame", "netmeta", "NetworkMetaAnalysis", "ModelEstimates",
    "decomp_design", "Decomposition", "netsplit", "pscores", "rankogram", "league_table", "contribution_matrix",
    "study_contributions", "cinema", "confidence_table", "ComparisonConfidence", "DomainJudgement", "NMASpec",
    "analyse", "run_spec",
]
