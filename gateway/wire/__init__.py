"""TensorFlow Serving's wire format without TensorFlow: its protobuf messages and the TensorProto codec.

``protos`` imports the generated message and service modules of ``tensorflow-serving-api``
without running TensorFlow's package initialiser; ``tensors`` converts numpy arrays to and
from ``TensorProto`` by hand; ``status`` is the one gRPC <-> HTTP status table both tiers use.
"""
