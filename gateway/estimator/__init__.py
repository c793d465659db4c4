"""Fitted scikit-learn estimators as data-only numpy programs: what the sklearn backend serves.

``compiler.py`` (packaging; imports scikit-learn) turns a fitted estimator into arrays saved
as ``estimator.compiled.npz`` beside the pickle; ``program.py`` (serving; numpy only) loads
them and answers ``predict_proba`` / ``decision_function`` / ``predict`` as the estimator
does. Supported: logistic regression (binary, multinomial, one-vs-rest), linear regressors
(LinearRegression, Ridge, Lasso, ElasticNet, SGD, ...), decision trees, random forests and
extra trees (classifier and regressor), gradient boosting (classifier and regressor, with
the default or a zero initial estimate). Anything else is served from its verified pickle,
as before; packaging records which, and why.
"""
