"""A TensorFlow-Serving-compatible graph server (``graph-server``).

Same flags, same gRPC and REST APIs as ``tensorflow_model_server``, so the logic
service, tests and laptops without a container engine meet a real gRPC server
that cannot be told apart from the official image.

Layout: ``server`` wires flags to the pieces; ``manager`` owns version
lifecycles; ``servable`` is one loaded SavedModel; ``runner``/``batching`` run
Predicts; ``examples`` runs Classify/Regress/MultiInference; ``dataplane`` is
what every API does; ``grpc_api`` and ``rest_api`` (+ ``http_server``,
``rest_json``, ``example_json``) are the transports; ``warmup``, ``monitoring``,
``config`` and ``protodefs`` are what their names say.

Known differences from TF-Serving:

* TFLite models (``model.tflite``) and ``custom_model_config`` are not served.
* Classify, Regress and MultiInference always run the model directly: server-side
  batching and ``--echo_mode`` apply to Predict.
* Batching: ``pad_variable_length_inputs`` and large-batch splitting are not
  implemented (requests with different shape tails batch separately; a request
  larger than ``max_batch_size`` is refused).
* ``ReloadConfigRequest.metric_names`` is ignored (no metric increases reported).
* ``--model_config_file`` is re-applied when its content changes; TF-Serving
  re-applies it every period, which undoes HandleReloadConfigRequest changes.
* ``--port=0`` picks a free port instead of being refused.
* Prometheus: counters carry prometheus_client's ``_total`` suffix, request
  metrics are also labelled by version and signature.
"""
