"""Logic-service settings: one typed object, built once at start-up and passed down.

Every field reads from an environment variable ``GATEWAY_<FIELD>`` (upper case).
Nothing on the request path reads ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.errors import ConfigError


class Settings(BaseSettings):
    """Settings of one logic service (one model per process group)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid")

    model: str = Field("risk", description="Name of the model this service scores (models/<name>).")
    models_root: Path = Field(
        Path("models"), description="Directory holding <name>/model.yaml and version directories."
    )
    version: int | None = Field(
        None, description="Serve only this version (instead of the spec's version policy)."
    )
    version_poll_ms: int = Field(
        1000,
        ge=0,
        description=(
            "How often each worker looks for new, changed and removed versions and re-reads the "
            "model config file (TF-Serving's --file_system_poll_wait_seconds); 0: only at start."
        ),
    )
    model_config_file: Path | None = Field(
        None,
        description=(
            "The model config file (TF-Serving's --model_config_file) whose version_labels name "
            "versions for both tiers; admin label changes are written here. None: no labels."
        ),
    )
    graph_base_path: str | None = Field(
        None,
        description=(
            "The graph's path to this model's versions (base_path in the model config file). Set where "
            "both tiers share a writable model config file (compose): the logic service rewrites the file "
            "from its spec at start, keeping the labels, so a new image's version policy takes effect."
        ),
    )
    admin_token: SecretStr | None = Field(
        None,
        description=(
            "Bearer token of the admin API (labels, default version, reload); none: the admin API is off."
        ),
    )
    admin_token_file: Path | None = Field(
        None, description="A file holding the admin token (a container secret), read at start."
    )

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        if self.admin_token is None and self.admin_token_file is not None:
            try:
                self.admin_token = SecretStr(self.admin_token_file.read_text().strip())
            except OSError as e:
                raise ValueError(f"admin_token_file {self.admin_token_file}: {e.strerror}") from e
        return self

    def redis_password(self) -> str | None:
        if self.redis_password_file is None:
            return None
        try:
            return self.redis_password_file.read_text().strip()
        except OSError as e:
            raise ConfigError(f"GATEWAY_REDIS_PASSWORD_FILE {self.redis_password_file}: {e.strerror}") from e

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Feature store address (redis:// or rediss://)."
    )
    redis_password_file: Path | None = Field(
        None, description="A file holding the Redis password (a container secret); overrides the URL's."
    )
    redis_cluster: bool = Field(False, description="Treat redis_url as one seed node of a Redis Cluster.")
    redis_timeout_ms: int = Field(200, ge=1, description="Socket connect and read timeout for feature reads.")
    redis_max_connections: int = Field(32, ge=1, description="Connection-pool size per worker process.")
    graph_targets: list[str] | None = Field(
        None, description="Override the spec's graph addresses (host:port, comma-separated JSON list)."
    )
    graph_deadline_ms: int | None = Field(
        None, ge=1, description="Override the spec's per-call graph deadline."
    )
    coalesce_max_rows: int = Field(
        512,
        ge=0,
        description="Merge a worker's concurrent Predicts of one version into one graph call of up to this "
        "many rows (a request never waits when no call is in flight); 0 sends every request on its own.",
    )
    max_body_bytes: int = Field(
        1 << 20, ge=1024, description="Largest accepted request body; larger gets 413."
    )
    allow_drift: list[str] = Field(
        default_factory=list,
        description=(
            "Libraries (python, scikit-learn, numpy, tensorflow) whose version may differ "
            "from the manifest's; any other mismatch refuses to load the transformer."
        ),
    )
    access_log: bool = Field(True, description="Write one JSON access-log line per request (to stderr).")
    metrics_flush_ms: int = Field(
        1000,
        ge=0,
        description=(
            "Metric updates are summed per worker and applied to the Prometheus values this often "
            "(and before the worker answers /metrics, and at exit); 0 applies each update at once."
        ),
    )
    log_level: str = Field("INFO", description="Log level of the gateway loggers.")
    warmup: bool = Field(
        True,
        description=(
            "Send the spec's warm-up requests through the full path (features, transform, Predict "
            "pinned to the version) before a version takes traffic."
        ),
    )
