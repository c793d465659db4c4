# syntax=docker/dockerfile:1
# The graph service of one model: TF-Serving with the model's versions and configs baked in.
#   gateway bundle risk --out build/risk
#   docker build -f deploy/docker/graph.Dockerfile -t graph-risk build/risk
# The tag matches the TensorFlow that exported the versions (`gateway render --check`).
# For development, mount versions over /models/<MODEL> instead of baking them in.
ARG TF_SERVING_IMAGE=tensorflow/serving:2.21.0
FROM ${TF_SERVING_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin serving
COPY graph/models/ /models/
# Owned by the service user: in compose the logic service writes labels to it (a shared volume).
COPY --chown=10001:10001 graph/config/ /config/
USER 10001
EXPOSE 8500 8501
# oneDNN off, and the flags of every environment (gateway/deploy/serving.py: GRAPH_ENV and
# graph_args; a test keeps them equal). Kubernetes passes the same flags as args.
ENV TF_ENABLE_ONEDNN_OPTS=0
ENTRYPOINT ["tensorflow_model_server"]
CMD ["--port=8500", "--rest_api_port=8501", "--model_config_file=/config/models.config", "--model_config_file_poll_wait_seconds=1", "--file_system_poll_wait_seconds=1", "--allow_version_labels_for_unavailable_models=true", "--monitoring_config_file=/config/monitoring.config", "--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=-1"]
