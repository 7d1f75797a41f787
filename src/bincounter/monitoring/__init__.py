"""Watching the live bins (docs/monitoring.md): the endpoint's data capture read back
(``capture``), the reference distributions training stores beside model.json
(``reference``), and their comparison with a window of live answers, drift tests and the
label-free estimates the calibrated probabilities allow (``drift``, ``report``)."""
