"""What every API does, whichever transport (gRPC or REST) it came through.

The transports only parse and shape; this module resolves the ``ModelSpec``,
leases the servable, runs it through the runner (Predict) or the example
pipelines (Classify, Regress, MultiInference), and builds TF-Serving's
responses, with TF-Serving's validation and error messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from gateway.graph_server import examples
from gateway.graph_server.errors import ServingError, code_number, internal, invalid
from gateway.graph_server.manager import ModelManager
from gateway.graph_server.monitoring import CallInfo
from gateway.graph_server.runner import Arrays, Outputs, Runner, timeout_ms
from gateway.graph_server.servable import DEFAULT_SIGNATURE
from gateway.wire.model_config import ModelConfigError
from gateway.wire.protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
)

SIGNATURE_DEF_FIELD = "signature_def"
_PREDICT_METHODS = (examples.PREDICT, examples.CLASSIFY, examples.REGRESS)


@dataclass(frozen=True)
class Target:
    """Which servable a ModelSpec asks for: latest, a version, or a label."""

    name: str
    version: int | None = None
    label: str | None = None


def model_target(spec: Any, present: bool = True) -> Target:
    if not present:
        raise invalid("Missing ModelSpec")
    if not spec.name:
        raise invalid("ModelSpec has no name specified.")
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return Target(spec.name, version=int(spec.version.value))
    if choice == "version_label":
        return Target(spec.name, label=spec.version_label)
    return Target(spec.name)


@dataclass(frozen=True)
class Prediction:
    name: str
    version: int
    signature_name: str
    outputs: Outputs


class Dataplane:
    """The serving APIs over a model manager and a Predict runner."""

    def __init__(
        self,
        manager: ModelManager,
        runner: Runner,
        *,
        method_check: bool = False,
        reload: Callable[[Any], None] | None = None,
    ) -> None:
        self.manager = manager
        self.runner = runner
        self.method_check = method_check
        self._reload = reload

    # -- Predict -------------------------------------------------------
    def predict(
        self,
        spec: Any,
        inputs: Arrays,
        output_filter: Sequence[str],
        info: CallInfo,
        *,
        has_spec: bool = True,
        timeout_s: float | None = None,
    ) -> Prediction:
        target = model_target(spec, has_spec)
        info.model = target.name
        info.signature = spec.signature_name or DEFAULT_SIGNATURE
        with self.manager.lease(target.name, target.version, target.label) as servable:
            info.version = str(servable.version)
            if self.method_check:
                self._check_predict_method(servable, spec.signature_name)
            key, outputs = self.runner.predict(
                servable, spec.signature_name, inputs, output_filter, timeout_s
            )
            info.signature = key
            return Prediction(target.name, servable.version, key, outputs)

    def _check_predict_method(self, servable: Any, signature_name: str) -> None:
        _key, sig = servable.find_signature(signature_name)
        if sig is not None and sig.method_name not in _PREDICT_METHODS:
            raise internal(
                f"Expected prediction signature method_name to be one of {{{', '.join(_PREDICT_METHODS)}}}. "
                f"Was: {sig.method_name}"
            )

    def input_info(self, spec: Any, info: CallInfo) -> Mapping[str, Any]:
        """The signature's input TensorInfos, for decoding a REST body (TF-Serving's GetInfoMap)."""
        target = model_target(spec)
        info.model = target.name
        with self.manager.lease(target.name, target.version, target.label) as servable:
            key, sig = servable.find_signature(spec.signature_name)
            if sig is None:
                raise invalid(f'Serving signature name: "{key}" not found in signature def')
            return dict(sig.inputs)

    # -- Classify / Regress / MultiInference --------------------------
    def classify(self, request: Any, info: CallInfo, timeout_s: float | None = None) -> Any:
        return self._examples(examples.classify, request, info, timeout_s)

    def regress(self, request: Any, info: CallInfo, timeout_s: float | None = None) -> Any:
        return self._examples(examples.regress, request, info, timeout_s)

    def _examples(
        self, run: Callable[..., Any], request: Any, info: CallInfo, timeout_s: float | None
    ) -> Any:
        target = model_target(request.model_spec, request.HasField("model_spec"))
        info.model = target.name
        with self.manager.lease(target.name, target.version, target.label) as servable:
            info.version = str(servable.version)
            info.signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
            return run(servable, request, self.method_check, timeout_ms(timeout_s))

    def multi_inference(self, request: Any, info: CallInfo, timeout_s: float | None = None) -> Any:
        if not request.tasks or not request.tasks[0].model_spec.name:
            raise invalid("ModelSpec has no name specified.")
        spec = request.tasks[0].model_spec
        examples.check_multi_inference_tasks(request)
        target = model_target(spec)
        info.model = target.name
        with self.manager.lease(target.name, target.version, target.label) as servable:
            info.version = str(servable.version)
            info.signature = ",".join(t.model_spec.signature_name or DEFAULT_SIGNATURE for t in request.tasks)
            return examples.multi_inference(servable, request, self.method_check, timeout_ms(timeout_s))

    # -- metadata and status -------------------------------------------
    def metadata(self, request: Any, info: CallInfo) -> Any:
        target = model_target(request.model_spec, request.HasField("model_spec"))
        info.model = target.name
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid(f"Metadata field {field} is not supported")
        with self.manager.lease(target.name, target.version, target.label) as servable:
            info.version = str(servable.version)
            sigmap = get_model_metadata_pb2.SignatureDefMap()
            for key, sig in servable.signatures.items():
                sigmap.signature_def[key].CopyFrom(sig)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(sigmap)
        return response

    def status(self, request: Any, info: CallInfo) -> Any:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        info.model = spec.name
        version = int(spec.version.value) if spec.HasField("version") else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for vs in self.manager.status(spec.name, version):
            st = response.model_version_status.add()
            st.version = vs.version
            st.state = int(vs.state)
            st.status.error_code = code_number(getattr(grpc.StatusCode, vs.error_code))
            st.status.error_message = vs.error_message
        return response

    # -- ModelService.HandleReloadConfigRequest ------------------------
    def reload(self, request: Any) -> Any:
        if request.config.WhichOneof("config") != "model_config_list":
            raise invalid(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported"
            )
        if self._reload is None:
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED, "config reload is not enabled on this server")
        try:
            self._reload(request.config)
        except ModelConfigError as e:
            raise invalid(str(e)) from e
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        return response
