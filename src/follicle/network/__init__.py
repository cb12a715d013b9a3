"""Network studies: one study package run at many sites, aggregates shared, pooled.

:mod:`package` (the spec with its hash and versions), :mod:`site` (a site's run and its bundle of
aggregates), :mod:`pool` (pooling bundles: normal approximation and profile likelihoods),
:mod:`report` (site summary and pooled report), :mod:`archive` (zip files written atomically and
read with limits). The statistics are in :mod:`follicle.survival.profile` and
:mod:`follicle.synthesis.likelihood`. See docs/network.md.
"""
