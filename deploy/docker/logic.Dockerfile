# syntax=docker/dockerfile:1
# The logic service of one model: Flask under gunicorn, no TensorFlow runtime.
#   gateway bundle risk --out build/risk
#   docker build -f deploy/docker/logic.Dockerfile --build-arg MODEL=risk -t logic-risk build/risk
# (make images does both.) The context is the model's bundle: the package, the specs it needs
# and its published versions, which are baked in.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY gateway ./gateway
# The package and its own dependencies; TF-Serving's API without its dependency on TensorFlow.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps -c constraints.txt tensorflow-serving-api
# Only the TensorFlow message modules the logic tier imports, found by importing it.
RUN python -m venv /opt/tf \
 && /opt/tf/bin/pip install --no-cache-dir --no-deps -c constraints.txt tensorflow \
 && /opt/venv/bin/python -m gateway.wire.closure \
      --from /opt/tf/lib/python3.11/site-packages --into /opt/venv/lib/python3.11/site-packages

FROM ${PYTHON_IMAGE}
ARG MODEL
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
# The specs this model needs (its own, and those it extends) and its published versions.
COPY models/ /app/models/
WORKDIR /app
USER 10001
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_MODEL=${MODEL} \
    GATEWAY_MODELS_ROOT=/app/models \
    GATEWAY_BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/ready', timeout=2)"]
ENTRYPOINT ["gunicorn", "-c", "python:gateway.logic.web.gunicorn_conf", "gateway.logic.web.app:create_app()"]
