"""
The workflow engine: Argo Workflow manifests in, runs out.

Knows nothing of HTTP, Git hosts or sensors; :mod:`sensors` and :mod:`gittrigger` use it
through the names below only.
"""
