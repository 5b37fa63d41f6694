"""Human-readable and machine-readable views of results.

* :mod:`~pipesim.report.tables` — rich tables of a workload and of a split's loads;
* :mod:`~pipesim.report.plots` — PNG charts (per-device loads, sweeps), matplotlib;
* :mod:`~pipesim.report.html` — one self-contained HTML page;
* :mod:`~pipesim.report.pages` — the run and sweep reports built from them.
"""
