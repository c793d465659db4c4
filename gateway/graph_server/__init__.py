"""A TensorFlow-Serving-compatible graph server (``graph-server``).

Same flags, same gRPC and REST APIs as ``tensorflow_model_server``, so the logic
service, tests and laptops without a container engine meet a real gRPC server
that cannot be told apart from the official image.
"""
