"""The workflow model: ids, spec and status dataclasses, and the Argo wire format (:mod:`.wire`)."""
