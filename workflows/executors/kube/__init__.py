"""The Kubernetes executor's parts; :mod:`workflows.executors.kubernetes` is the entry point.

``status`` (pure: a Pod's status read as a node result), ``gc`` (pure: when pods are deleted),
``calls`` (every API request: rate limit, retries, error mapping), ``watch`` (one pod watch per
namespace), ``logs`` (log streams into the log store). Only this folder and
:mod:`workflows.executors.kubernetes` import kubernetes_asyncio.
"""
