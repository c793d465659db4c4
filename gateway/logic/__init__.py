"""The logic service: validate -> features -> transform -> graph -> post-process.

Views (``views.py``) only parse and shape HTTP; ``orchestrator.Scorer`` runs the
stages and has no Flask import; each stage lives in its own module.
"""
