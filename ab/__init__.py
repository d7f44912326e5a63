"""Funnelcake's A/B engine: assignment, statistics, sequential tests, bandits, promotion policy.

Pure Python on numpy and scipy. Nothing here knows HTTP, SQL or Flask: every function takes plain
numbers (frozen dataclasses of sufficient statistics) and returns plain dataclasses. Bad input
raises :class:`ValueError` naming the input; no NaN ever leaves the package.

Modules, one job each:

``assignment``  sticky, weighted bucketing of visitors into variants (and the holdout)
``stats``       fixed-horizon frequentist statistics (Wilson, z, exact, Welch, lift, Holm, SRM)
``bayes``       Beta-binomial and Normal posteriors: chance to beat control, expected loss
``sequential``  tests that survive continuous monitoring (alpha spending, mSPRT)
``stratification``  post-stratification from per-stratum sufficient statistics
``guardrails``  guardrail metrics: the always-valid one-sided test of harm
``bandit``      Thompson-sampling traffic weights
``policy``      the promotion decision: continue, promote, hold, or stop
``simulate``    the A/A, power, SRM, guardrail and strata simulations (``python -m ab.simulate``)
"""
