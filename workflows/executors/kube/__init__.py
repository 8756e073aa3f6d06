"""The Kubernetes executor's parts; :mod:`workflows.executors.kubernetes` is the entry point.

``status`` (pure: a Pod's status read as a node result), ``gc`` (pure: when pods are deleted),
``calls`` (every API request: rate limit, retries, error mapping), ``logs`` (log streams into the
log store), ``watch`` (one pod watch per
namespace). Only this folder and :mod:`workflows.executors.kubernetes` import kubernetes_asyncio.
"""
