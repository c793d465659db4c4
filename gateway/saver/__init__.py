"""The data scientist's half: train, export, package and publish model versions."""
