"""Two-tier model-serving gateway: a Flask logic service in front of a TF-Serving graph service."""

__version__ = "0.1.0"
