"""Deployment: every file that runs the models, rendered from the specs (``gateway render``).

``settings`` reads ``deploy/settings.yaml`` (what every model shares); ``serving`` writes
TF-Serving's configs per model; ``supervisor`` the local stack's process list; ``compose``
docker-compose.yml; ``kube`` the Kubernetes resources (a kustomize base and overlays per
environment); ``render`` puts them together and checks that the committed files are current.
"""
