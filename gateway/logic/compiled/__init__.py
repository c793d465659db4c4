"""Fitted scikit-learn transformers compiled into plain numpy operations at load.

``compile_transformer(fitted, columns)`` returns a ``Program`` whose call equals
``fitted.transform(pandas.DataFrame(columns))`` without pandas or scikit-learn on the
request path; ``Program.report`` lists what could not be compiled and runs through
scikit-learn instead.
"""

from gateway.logic.compiled.encoders import UnknownCategory
from gateway.logic.compiled.program import Program, compile_transformer, reference_program

__all__ = ["Program", "UnknownCategory", "compile_transformer", "reference_program"]
