"""Events to workflow submissions, with Argo Events semantics; knows nothing of HTTP."""
