"""Model versions in the logic tier, in TF-Serving's vocabulary.

A *source* (``source.py``) watches ``models/<name>/`` and the model config file and says
which versions are aspired and what the labels are; a *loader* (``loader.py``) verifies
and loads one version (manifest, hashes, transformer, estimator); the *manager*
(``manager.py``) moves versions through LOADING -> AVAILABLE -> UNLOADING -> END,
waiting for the graph to report a version AVAILABLE and for warm-up requests through the
full path before a version takes traffic, and never releasing the last available one;
*routing* (``routing.py``) turns the available versions, the labels and the spec into
the version each request is pinned to (default, label, canary).
"""
