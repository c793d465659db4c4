"""Writing the online feature store: snapshot loads behind an atomically switched alias."""
