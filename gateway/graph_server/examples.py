"""Classify, Regress and MultiInference: ``tf.Example`` inputs run through a signature.

As in TF-Serving, the request's ``Input`` becomes one DT_STRING tensor of
serialized examples (with ``example_list_with_context`` each entry is the
serialized context followed by the serialized example, so example features win
on a clash), fed to the signature's ``inputs`` tensor. Classification reads the
``classes`` and/or ``scores`` outputs ([batch, num_classes]); regression reads
``outputs`` ([batch] or [batch, 1]). Signature checks and error messages follow
TF-Serving's classifier, regressor and multi-inference runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from google.protobuf import text_format

from gateway.graph_server.errors import invalid, unimplemented
from gateway.graph_server.servable import DEFAULT_SIGNATURE, Servable
from gateway.wire.protos import classification_pb2, inference_pb2, regression_pb2

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
PREDICT = "tensorflow/serving/predict"
Array = np.ndarray[Any, Any]


def serialized_examples(inp: Any) -> Array:
    """The ``Input`` as a [n] DT_STRING tensor of serialized ``tf.Example``s."""
    kind = inp.WhichOneof("kind")
    items: list[bytes] = []
    if kind == "example_list":
        items = [e.SerializeToString() for e in inp.example_list.examples]
    elif kind == "example_list_with_context":
        ctx = inp.example_list_with_context.context.SerializeToString()
        items = [ctx + e.SerializeToString() for e in inp.example_list_with_context.examples]
    if not items:
        raise invalid("Input is empty.")
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _debug(sig: Any) -> str:
    return str(text_format.MessageToString(sig, as_one_line=True))


def classification_io(sig: Any, method_check: bool) -> tuple[str, list[str]]:
    """(input tensor name, output tensor names) of a classification signature."""
    if method_check and sig.method_name != CLASSIFY:
        raise invalid(
            f"Expected classification signature method_name to be {CLASSIFY}. Was: {sig.method_name}"
        )
    if len(sig.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(sig.outputs) not in (1, 2):
        raise invalid(f"Expected one or two output Tensors, found {len(sig.outputs)}")
    if "inputs" not in sig.inputs:
        raise invalid(f"No classification inputs found in SignatureDef: {_debug(sig)}")
    names = [sig.outputs[k].name for k in ("classes", "scores") if k in sig.outputs]
    if not names:
        raise invalid(
            'Expected classification signature outputs to contain at least one of "classes" or '
            f'"scores". Signature was: {_debug(sig)}'
        )
    return sig.inputs["inputs"].name, names


def regression_io(sig: Any, method_check: bool) -> tuple[str, list[str]]:
    if method_check and sig.method_name != REGRESS:
        raise invalid(f"Expected regression signature method_name to be {REGRESS}. Was: {sig.method_name}")
    if len(sig.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(sig.outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if "inputs" not in sig.inputs:
        raise invalid(f"No regression inputs found in SignatureDef: {_debug(sig)}")
    if "outputs" not in sig.outputs:
        raise invalid(f"No regression outputs found in SignatureDef: {_debug(sig)}")
    return sig.inputs["inputs"].name, [sig.outputs["outputs"].name]


def classification_result(sig: Any, n: int, names: Sequence[str], values: Sequence[Array], out: Any) -> None:
    by_name = dict(zip(names, values, strict=True))
    classes = by_name.get(sig.outputs["classes"].name) if "classes" in sig.outputs else None
    scores = by_name.get(sig.outputs["scores"].name) if "scores" in sig.outputs else None
    for what, t, kind in (("classes", classes, "OSU"), ("scores", scores, "f")):
        if t is None:
            continue
        if t.ndim != 2:
            raise invalid(f"Expected Tensor shape: [batch_size num_classes] but got {list(t.shape)}")
        if t.dtype.kind not in kind or (what == "scores" and t.dtype != np.float32):
            want = "DT_STRING" if what == "classes" else "DT_FLOAT"
            raise invalid(f"Expected {what} Tensor of {want}. Got: {t.dtype}")
        if t.shape[0] != n:
            raise invalid(f"Expected {what} output batch size of {n}. Got: {t.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid(
            "Tensors class and score should match in dim_size(1). "
            f"Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    num_classes = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
    for i in range(n):
        entry = out.classifications.add()
        for c in range(num_classes):
            cl = entry.classes.add()
            if classes is not None:
                label = classes[i, c]
                cl.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                cl.score = float(scores[i, c])


def regression_result(sig: Any, n: int, names: Sequence[str], values: Sequence[Array], out: Any) -> None:
    wanted = sig.outputs["outputs"].name
    by_name = dict(zip(names, values, strict=True))
    if wanted not in by_name:
        raise invalid(f"Could not find output tensor '{wanted}'")
    t = by_name[wanted]
    if not (t.ndim == 1 or (t.ndim == 2 and t.shape[1] == 1)):
        raise invalid(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
            f"but got {list(t.shape)}"
        )
    if t.shape[0] != n:
        raise invalid(f"Input batch size did not match output batch size: {n} vs. {t.shape[0]}")
    if t.dtype != np.float32:
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: {t.dtype}")
    for v in t.reshape(-1).tolist():
        out.regressions.add().value = v


def echo_spec(out: Any, name: str, signature_name: str, version: int) -> None:
    out.name = name
    out.signature_name = signature_name or DEFAULT_SIGNATURE
    out.version.value = version


def _signature(servable: Servable, name: str, missing: str) -> Any:
    key, sig = servable.find_signature(name)
    if sig is None:
        raise invalid(f"{missing}{key}")
    return sig


def classify(servable: Servable, request: Any, method_check: bool = False, timeout_ms: int = 0) -> Any:
    """Run a ClassificationRequest on this servable; returns the ClassificationResponse."""
    sig = _signature(servable, request.model_spec.signature_name, "No signature was found with the name: ")
    in_name, out_names = classification_io(sig, method_check)
    examples = serialized_examples(request.input)
    values = servable.run_tensors([in_name], [examples], out_names, timeout_ms)
    response = classification_pb2.ClassificationResponse()
    echo_spec(
        response.model_spec, request.model_spec.name, request.model_spec.signature_name, servable.version
    )
    classification_result(sig, len(examples), out_names, values, response.result)
    return response


def regress(servable: Servable, request: Any, method_check: bool = False, timeout_ms: int = 0) -> Any:
    """Run a RegressionRequest on this servable; returns the RegressionResponse."""
    sig = _signature(servable, request.model_spec.signature_name, "No signature was found with the name: ")
    in_name, out_names = regression_io(sig, method_check)
    examples = serialized_examples(request.input)
    values = servable.run_tensors([in_name], [examples], out_names, timeout_ms)
    response = regression_pb2.RegressionResponse()
    echo_spec(
        response.model_spec, request.model_spec.name, request.model_spec.signature_name, servable.version
    )
    regression_result(sig, len(examples), out_names, values, response.result)
    return response


def check_multi_inference_tasks(request: Any) -> str:
    """The model every task names (they must agree); raises on a malformed task list."""
    model = ""
    for task in request.tasks:
        if not task.model_spec.name:
            raise invalid("Found ModelSpec with an empty model name.")
        if model and task.model_spec.name != model:
            raise invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        model = task.model_spec.name
    return model


def multi_inference(servable: Servable, request: Any, method_check: bool = False, timeout_ms: int = 0) -> Any:
    """Run every task's signature over the same examples in one session run."""
    check_multi_inference_tasks(request)
    plans: list[tuple[Any, Any]] = []
    seen: set[str] = set()
    in_names: set[str] = set()
    out_names: set[str] = set()
    for task in request.tasks:
        key = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if key in seen:
            raise invalid(f"Duplicate evaluation of signature: {key}")
        seen.add(key)
        sig = _signature(servable, key, "Requested signature not found in model graph: ")
        if task.method_name == CLASSIFY:
            in_name, outs = classification_io(sig, method_check)
        elif task.method_name == REGRESS:
            in_name, outs = regression_io(sig, method_check)
        else:
            raise unimplemented(f"Unsupported signature method_name: {task.method_name}")
        in_names.add(in_name)
        out_names.update(outs)
        plans.append((task, sig))
    examples = serialized_examples(request.input)
    fetch = sorted(out_names)
    feeds = sorted(in_names)
    values = servable.run_tensors(feeds, [examples] * len(feeds), fetch, timeout_ms)
    response = inference_pb2.MultiInferenceResponse()
    for task, sig in plans:
        result = response.results.add()
        if task.method_name == CLASSIFY:
            classification_result(sig, len(examples), fetch, values, result.classification_result)
        else:
            regression_result(sig, len(examples), fetch, values, result.regression_result)
        echo_spec(result.model_spec, task.model_spec.name, task.model_spec.signature_name, servable.version)
    return response
