# Logic service image: Flask + gunicorn, no TensorFlow runtime.
# tensorflow-serving-api is installed without its dependencies: the logic tier
# only needs its generated message modules (see gateway/wire/protos.py), and the
# 'tensorflow' package directory they live next to comes from the same wheel set.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY gateway ./gateway
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt \
      flask gunicorn scikit-learn pandas numpy requests redis hiredis grpcio protobuf orjson \
      prometheus-client pyyaml pydantic pydantic-settings pyarrow tqdm \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps -c constraints.txt tensorflow-serving-api tensorflow \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app gateway
COPY --from=build /opt/venv /opt/venv
COPY models /app/models
WORKDIR /app
USER 10001
ENV PATH=/opt/venv/bin:$PATH GATEWAY_MODELS_ROOT=/app/models GATEWAY_BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status!=200)"
CMD ["gunicorn", "-c", "python:gateway.logic.web.gunicorn_conf", "gateway.logic.web.app:create_app()"]
