"""A simulated network at the array level: sites with a binary confounder, different sizes and
confounding, and a known true log HR (for the network-pooling tests and docs/network.md's validation;
the whole-pipeline synthetic world is :mod:`follicle.synth.world`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Site:
    time: np.ndarray
    event: np.ndarray
    treatment: np.ndarray
    confounder: np.ndarray


def simulate_site(rng: np.random.Generator, n: int, *, log_hr: float, base_rate: float, prevalence: float,
                  confounding: float, follow_up: float = 1000.0) -> Site:
    """*n* people; a binary confounder with *prevalence* raises the odds of treatment by
    exp(*confounding*) and the hazard by 2; exponential event times, uniform censoring (days)."""
    x = rng.random(n) < prevalence
    p_treat = 1 / (1 + np.exp(-(-0.5 + confounding * x)))
    t = (rng.random(n) < p_treat).astype(int)
    rate = base_rate * np.exp(log_hr * t + np.log(2.0) * x)
    event_time = rng.exponential(1 / rate)
    censor = rng.uniform(30, follow_up, n)
    time = np.ceil(np.minimum(event_time, censor))
    return Site(time, event_time <= censor, t, x.astype(int))


#: (persons, base daily rate, confounder prevalence, confounding log OR): one small site with few events
NETWORK = [(6000, 2e-4, 0.3, 1.0), (3000, 3e-4, 0.5, 0.3), (1500, 2e-4, 0.2, 2.0), (400, 1.5e-4, 0.6, 1.5)]


def simulate_network(seed: int, log_hr: float = np.log(1.5), sites: list = NETWORK) -> list[Site]:
    rng = np.random.default_rng(seed)
    return [simulate_site(rng, n, log_hr=log_hr, base_rate=r, prevalence=p, confounding=c) for n, r, p, c in sites]
