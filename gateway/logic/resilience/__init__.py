"""Failing soft: the graph's circuit breaker, the fallback chain, the light model, load shedding.

When the graph misses its deadline, is unavailable, its circuit is open or the worker is
over its in-flight budget, the answer comes from the first source of the spec's
``fallback.chain`` that works and says so (``"degraded": true`` and the reason); without
a fallback the caller gets the error. See ``gateway.spec.degrade`` for the policy.
"""
