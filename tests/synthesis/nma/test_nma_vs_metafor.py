"""Differential tests against R's metafor (Debian r-cran-metafor) on networks generated here.

R builds its own contrasts from the same arm-level data (escalc against each study's first arm) and
fits the contrast-based model with the multi-arm covariance by generalised least squares (rma.mv
without random effects): that is the common-effect network meta-analysis exactly, and, with
tau^2 x (1 on the diagonal, 1/2 within a study) added to V, the random-effects model for a given
tau^2. tau^2 itself (and the design-by-treatment tau^2 of the decomposition) is checked against the generalised
DerSimonian-Laird moment estimator written in R from Jackson, White & Riley (2012) on the basic-contrast
parameterisation (the route of netmeta's decomp.design, independent of our graph/pseudoinverse route). Also checked in R: within-design Q
(GLS per design), direct pairwise estimates (rma EE), and indirect estimates of networks of two-arm
studies (the network refitted without the comparison's studies equals the back-calculation there).
Tolerance 1e-8 relative. One R process for the module.
"""

import numpy as np
import pandas as pd
import pytest

from follicle.synthesis.nma import decomp_design, netmeta, netsplit, pairwise
from nma_networks import binary_network, continuous_network, parkinson, smokingcessation, woods2010
from rbridge import run_r

pytestmark = pytest.mark.r
REL = 1e-8

CASES = {
    "or_multi": ("OR", binary_network(1, n_trt=5, k=12)),
    "rr_multi": ("RR", binary_network(2, n_trt=6, k=14)),
    "rd_multi": ("RD", binary_network(3, n_trt=4, k=10)),
    "md_multi": ("MD", continuous_network(4, n_trt=6, k=13)),
    "or_incoh": ("OR", binary_network(5, n_trt=5, k=14, incoherence=1.2, tau=0.1)),
    "md_twoarm": ("MD", continuous_network(6, n_trt=5, k=12, multi=False)),
    "or_twoarm": ("OR", binary_network(7, n_trt=4, k=11, multi=False)),
    # netmeta's documented data sets (tests/synthesis/nma/data/README.md)
    "smoking": ("OR", smokingcessation()),
    "woods": ("OR", woods2010()),
    "parkinson": ("MD", parkinson()),
}

R_CODE = r"""
library(metafor)
basic <- function(arms, ms) {
  rows <- list(); V <- list()
  for (s in unique(arms$study)) {
    a <- arms[arms$study == s, ]; b <- a[1, ]; o <- a[-1, ]
    if (ms %in% c("OR", "RR", "RD")) {
      e <- escalc(ms, ai=o$events, n1i=o$n, ci=rep(b$events, nrow(o)), n2i=rep(b$n, nrow(o)))
      p <- b$events / b$n
      cv <- switch(ms, OR = 1 / b$events + 1 / (b$n - b$events), RR = 1 / b$events - 1 / b$n, RD = p * (1 - p) / b$n)
    } else {
      e <- escalc("MD", m1i=o$mean, sd1i=o$sd, n1i=o$n, m2i=rep(b$mean, nrow(o)), sd2i=rep(b$sd, nrow(o)),
                  n2i=rep(b$n, nrow(o)))
      cv <- b$sd^2 / b$n
    }
    m <- matrix(cv, nrow(o), nrow(o)); diag(m) <- e$vi
    rows[[s]] <- data.frame(study=s, t1=o$treatment, t2=b$treatment, yi=as.numeric(e$yi))
    V[[s]] <- m
  }
  list(d=do.call(rbind, rows), V=V)
}
xmat <- function(d, trts) {
  X <- matrix(0, nrow(d), length(trts)); colnames(X) <- trts
  for (i in seq_len(nrow(d))) { X[i, d$t1[i]] <- 1; X[i, d$t2[i]] <- -1 }
  X
}
v0 <- function(d) { s <- d$study; m <- outer(s, s, "==") * 0.5; diag(m) <- 1; m }
gls_q <- function(y, X, V) { W <- solve(V); C <- solve(t(X) %*% W %*% X); r <- y - X %*% C %*% t(X) %*% W %*% y
  list(q=as.numeric(t(r) %*% W %*% r), C=C, W=W) }
for (nm in names(cases)) {
  arms <- get(nm); ms <- cases[[nm]]; tau2 <- taus[[nm]]
  bb <- basic(arms, ms); d <- bb$d; V <- bldiag(bb$V)
  trts <- sort(unique(arms$treatment), method="radix"); ref <- trts[1]  # C-locale order, as Python
  X <- xmat(d, trts)[, trts != ref, drop=FALSE]
  f <- rma.mv(d$yi, V, mods = ~ X - 1)
  out(paste0(nm, "_ce"), c(f$beta, f$se, f$QE))
  g <- gls_q(d$yi, X, V); V0 <- v0(d)
  tr <- sum(diag(g$W %*% V0)) - sum(diag(g$C %*% t(X) %*% g$W %*% V0 %*% g$W %*% X))
  out(paste0(nm, "_tau2"), max(0, (g$q - (nrow(X) - ncol(X))) / tr))
  fr <- rma.mv(d$yi, V + tau2 * V0, mods = ~ X - 1)
  out(paste0(nm, "_re"), c(fr$beta, fr$se))
  des <- sapply(d$study, function(s) paste(sort(unique(arms$treatment[arms$study == s])), collapse=":"))
  qw <- 0; XI <- NULL
  for (ds in unique(des)) { sel <- des == ds; td <- sort(unique(c(d$t1[sel], d$t2[sel])))
    Xd <- xmat(d[sel, ], td)[, -1, drop=FALSE]; Vd <- V[sel, sel, drop=FALSE]
    Xi <- matrix(0, nrow(d), ncol(Xd)); Xi[sel, ] <- Xd; XI <- cbind(XI, Xi)
    if (sum(sel) > ncol(Xd)) qw <- qw + gls_q(d$yi[sel], Xd, Vd)$q }
  out(paste0(nm, "_qwithin"), qw)
  # tau^2 of the full design-by-treatment interaction model (moment estimator as above)
  gi <- gls_q(d$yi, XI, V); dfi <- nrow(XI) - ncol(XI)
  tri <- sum(diag(gi$W %*% V0)) - sum(diag(gi$C %*% t(XI) %*% gi$W %*% V0 %*% gi$W %*% XI))
  out(paste0(nm, "_tauwithin"), if (dfi > 0) max(0, (gi$q - dfi) / tri) else 0)
  # direct estimates from every within-study pair (unadjusted variances), pairs in sorted order
  dir <- c()
  for (i in 1:(length(trts) - 1)) for (j in (i + 1):length(trts)) {
    yi <- c(); vi <- c()
    for (s in unique(arms$study)) { a <- arms[arms$study == s, ]
      if (all(c(trts[i], trts[j]) %in% a$treatment)) {
        x <- a[a$treatment == trts[i], ]; z <- a[a$treatment == trts[j], ]
        e <- if (ms == "MD") escalc("MD", m1i=x$mean, sd1i=x$sd, n1i=x$n, m2i=z$mean, sd2i=z$sd, n2i=z$n)
             else escalc(ms, ai=x$events, n1i=x$n, ci=z$events, n2i=z$n)
        yi <- c(yi, e$yi); vi <- c(vi, e$vi) } }
    if (length(yi)) { r <- rma(yi, vi, method="EE"); dir <- c(dir, i, j, r$beta, r$se) } }
  out(paste0(nm, "_direct"), dir)
  if (grepl("twoarm", nm)) {
    ind <- c()
    for (i in 1:(length(trts) - 1)) for (j in (i + 1):length(trts)) {
      drop <- (d$t1 == trts[i] & d$t2 == trts[j]) | (d$t1 == trts[j] & d$t2 == trts[i])
      if (!any(drop) || all(drop)) next
      keep <- !drop; tk <- sort(unique(c(d$t1[keep], d$t2[keep])))
      if (!all(c(trts[i], trts[j]) %in% tk)) next
      Xk <- xmat(d[keep, ], tk)
      if (qr(Xk)$rank < length(tk) - 1) next
      Xk <- Xk[, tk != trts[j], drop=FALSE]
      fk <- rma.mv(d$yi[keep], V[keep, keep], mods = ~ Xk - 1)
      sel <- rownames(fk$beta) == paste0("Xk", trts[i])
      ind <- c(ind, i, j, fk$beta[sel], fk$se[sel])
    }
    out(paste0(nm, "_indirect"), ind)
  }
}
"""


def _fit(name):
    measure, arms = CASES[name]
    return netmeta(pairwise(arms, measure))


@pytest.fixture(scope="module")
def ref(rscript):
    taus = {name: _fit(name).tau2 for name in CASES}
    setup = ("cases <- list(" + ", ".join(f'{n}="{m}"' for n, (m, _) in CASES.items()) + ")\n"
             "taus <- list(" + ", ".join(f"{n}={t!r}" for n, t in taus.items()) + ")\n")
    return run_r(rscript, setup + R_CODE, {n: a for n, (_, a) in CASES.items()})


def approx(x):
    return pytest.approx(x, rel=REL, abs=1e-10)


@pytest.mark.parametrize("name", list(CASES))
def test_common_effect_estimates_se_and_q(ref, name):
    res = _fit(name)
    n = len(res.treatments)
    b = ref[f"{name}_ce"]
    assert res.common.te[1:, 0].tolist() == approx(b[: n - 1])
    assert res.common.se[1:, 0].tolist() == approx(b[n - 1: 2 * (n - 1)])
    assert res.q == approx(b[-1])


@pytest.mark.parametrize("name", list(CASES))
def test_tau2_and_random_effects(ref, name):
    res = _fit(name)
    n = len(res.treatments)
    assert res.tau2 == approx(ref[f"{name}_tau2"][0])
    b = ref[f"{name}_re"]
    assert res.random.te[1:, 0].tolist() == approx(b[: n - 1])
    assert res.random.se[1:, 0].tolist() == approx(b[n - 1:])


def test_cases_cover_zero_and_positive_tau2():
    taus = [_fit(n).tau2 for n in CASES]
    assert min(taus) == 0.0 and max(taus) > 0.01


@pytest.mark.parametrize("name", list(CASES))
def test_within_design_q(ref, name):
    dec = decomp_design(_fit(name))
    q = dec.q_decomp.set_index("source")["q"]
    assert q["within designs"] == approx(ref[f"{name}_qwithin"][0])
    assert q["between designs"] == approx(q["whole network"] - ref[f"{name}_qwithin"][0])
    assert dec.tau_within**2 == approx(ref[f"{name}_tauwithin"][0])


@pytest.mark.parametrize("name", list(CASES))
def test_direct_estimates(ref, name):
    res = _fit(name)
    got = np.array(ref[f"{name}_direct"]).reshape(-1, 4)
    for i, j, te, se in got:
        i, j = int(i) - 1, int(j) - 1
        assert [res.common.direct_te[i, j], res.common.direct_se[i, j]] == approx([te, se])
    assert np.isfinite(res.common.direct_te).sum() == 2 * len(got)


@pytest.mark.parametrize("name", ["md_twoarm", "or_twoarm"])
def test_back_calculated_indirect_equals_network_without_the_comparison(ref, name):
    """For two-arm studies, netmeta's back-calculation is exactly the indirect network estimate."""
    res = _fit(name)
    split = netsplit(res, "common").set_index("comparison")
    got = np.array(ref[f"{name}_indirect"]).reshape(-1, 4)
    assert len(got) >= 3
    for i, j, te, se in got:
        a, b = res.treatments[int(i) - 1], res.treatments[int(j) - 1]
        row = split.loc[f"{a}:{b}"] if f"{a}:{b}" in split.index else None
        sign = 1.0
        if row is None:
            row, sign = split.loc[f"{b}:{a}"], -1.0
        assert [sign * row["indirect"], row["indirect_se"]] == approx([te, se])


def test_incoherent_case_is_detected():
    dec = decomp_design(_fit("or_incoh")).q_decomp.set_index("source")
    assert dec.loc["between designs", "p"] < 0.05
    assert dec.loc["between designs", "p"] < decomp_design(_fit("or_multi")).q_decomp.set_index("source").loc[
        "between designs", "p"]
