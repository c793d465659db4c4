"""Fitted scikit-learn transformers compiled into plain numpy operations.

``compiler.compile_transformer(fitted, columns)`` returns a ``Program``;
``program(columns, n)`` equals ``fitted.transform(pandas.DataFrame(columns))`` (bit for
bit in practice, within 1e-9 by contract) without running pandas or scikit-learn code
per request. ``ir.save_program`` stores a program as data (``transformer.compiled.npz``:
a JSON header plus numpy arrays) and ``ir.load_program`` rebuilds it with numpy alone,
so a worker serving a fully compiled version never imports scikit-learn, pandas or
scipy and never unpickles anything. Importing this package (or ``program``, ``ir``)
does not import them either; ``compiler`` and ``compose`` do.

Compiled: ``ColumnTransformer`` (column names, ``remainder``, ``passthrough``/``drop``
entries, ``transformer_weights``, sparse or dense output), ``Pipeline``,
``StandardScaler``, ``MinMaxScaler`` (``clip``), ``SimpleImputer`` (mean, median,
most_frequent, constant; ``add_indicator``, ``keep_empty_features``; NaN as the missing
marker), ``OneHotEncoder`` (every ``handle_unknown``, ``drop``, infrequent categories,
``sparse_output``, ``dtype``), ``OrdinalEncoder`` (``use_encoded_value``,
``encoded_missing_value``, infrequent categories), ``FunctionTransformer`` with no
function or a known pure numpy ufunc (``numeric.UFUNCS``) and this package's own
``gateway.transformer.classes.CyclicalEncoder``.

Everything else (another class, a custom function, ``set_output(transform="pandas")``,
a fitted-column mismatch) keeps running through scikit-learn, one ``ColumnTransformer``
block at a time; ``Program.report`` says which block and why, and a stored program
records those blocks with their reasons (loading it then needs the fitted transformer).

Deliberate differences from the reference:

- an unseen category under ``handle_unknown="error"`` raises ``UnknownCategory``, a 400
  naming the column, where scikit-learn raises a ``ValueError`` (a 500);
- ``handle_unknown="warn"`` (and ``"ignore"`` with ``drop``) encode exactly as the
  reference but do not emit its per-request ``UserWarning``;
- the process-wide ``sklearn.set_config(transform_output=...)`` is not consulted: the
  service never sets it, and it changes containers, not values.

A request whose values fall outside what a compiled block models (an infinity, an
integer beyond 64 bits, a string where numbers were fitted, a column missing in every
record where a common dtype is needed, ...) is computed by the reference for that block
and request when the program holds the fitted transformer. A program loaded from its
stored form alone has no reference: it refuses such a request with ``UnsupportedValue``
(a 400 naming the column) instead. ``Program.deferred`` counts both.
"""

from gateway.transformer.encoders import UnknownCategory
from gateway.transformer.ir import load_program, save_program
from gateway.transformer.program import Program, UnsupportedValue

__all__ = ["Program", "UnknownCategory", "UnsupportedValue", "load_program", "save_program"]
