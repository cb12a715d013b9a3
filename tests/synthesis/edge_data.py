"""Constructed meta-analysis data sets on which Fisher scoring for tau2 oscillates.

14 two-arm SMD studies with small-study asymmetry (simulated, then one study's treated mean
moved) so that at the REML solution the observed information is more than twice the expected
one: each Fisher-scoring step overshoots by a factor above 1. In OSC_EGGER this happens in
Egger's ``yi ~ sei`` regression only; in OSC_MAIN in the main model too (metafor's default fit
fails there: "Fisher scoring algorithm did not converge").
"""

OSC_EGGER = """study,m1i,sd1i,n1i,m2i,sd2i,n2i
S1,17.38,10.1,114,9.57,10.1,113
S2,17.36,11.8,30,10.43,11.8,27
S3,16.59,9.3,7,9.56,9.3,8
S4,15.16,9.3,49,9.07,9.3,45
S5,12.25,11.3,108,8.45,11.3,106
S6,15.53,11.7,102,10.52,11.7,100
S7,13.64,8.9,50,9.12,8.9,47
S8,15.38,8.6,53,9.99,8.6,54
S9,15.68,8.2,63,11.24,8.2,59
S10,13.68,9.0,23,9.83,9.0,24
S11,13.98,8.0,49,9.81,8.0,46
S12,17.81,8.5,40,11.74,8.5,43
S13,13.03,9.4,35,8.99,9.4,38
S14,18.39,11.5,45,10.62,11.5,47
"""
OSC_MAIN = """study,m1i,sd1i,n1i,m2i,sd2i,n2i
S1,15.12,8.1,28,9.62,8.1,23
S2,17.36,10.0,10,7.13,10.0,8
S3,14.57,11.3,13,8.46,11.3,13
S4,17.86,9.2,61,10.46,9.2,58
S5,19.76,11.7,47,11.24,11.7,46
S6,18.98,11.0,33,10.2,11.0,37
S7,15.38,11.3,49,9.45,11.3,50
S8,12.7,10.9,118,10.39,10.9,113
S9,17.04,10.7,24,10.96,10.7,22
S10,18.64,11.5,22,10.64,11.5,23
S11,15.31,8.4,33,9.13,8.4,33
S12,17.37,9.7,58,10.99,9.7,57
S13,27.16,10.4,8,9.49,10.4,4
S14,22.09,9.2,12,9.94,9.2,11
"""


