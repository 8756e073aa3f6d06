"""
The Kubernetes executor against a real cluster: opt-in, ``pytest -m kubernetes`` with ``KUBECONFIG`` set.

Needs the helper image (``GITTRIGGER_HELPER_IMAGE``, default the settings' one) pullable by the
cluster, and permission to create/watch/delete pods and read their logs in
``GITTRIGGER_TEST_NAMESPACE`` (default ``default``). Pods reach no server here, so the workflows
use no artifacts. Skipped everywhere else.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from gittrigger.settings import KubernetesSettings
from workflows.engine import Engine
from workflows.executors.kube.gc import Policy
from workflows.executors.kubernetes import KubeOptions, KubernetesExecutor
from workflows.loading import load_documents
from workflows.resolution import DictTemplateGetter
from workflows.store.memory import MemoryStore

pytestmark = [
    pytest.mark.kubernetes,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs a cluster: set KUBECONFIG"),
]
NS = os.environ.get("GITTRIGGER_TEST_NAMESPACE", "default")

WORKFLOW = """
metadata: {generateName: gittrigger-test-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: hello, template: hello}
    - - name: echo
        template: echo
        arguments: {parameters: [{name: v, value: "{{steps.hello.outputs.result}}"}]}
  - name: hello
    script:
      image: alpine:3.20
      command: [sh]
      source: echo hello
  - name: echo
    inputs: {parameters: [{name: v}]}
    container: {image: alpine:3.20, command: [sh, -c, "echo got {{inputs.parameters.v}}; exit 3"]}
"""


async def test_steps_on_a_real_cluster() -> None:
    """A script's result reaches the next step; a non-zero exit fails the run with its code."""
    options = KubeOptions(helper_image=os.environ.get("GITTRIGGER_HELPER_IMAGE", KubernetesSettings().helper_image),
                          server_url="http://127.0.0.1:1", namespace=NS, pod_gc=Policy(strategy="OnPodCompletion"))
    store = MemoryStore()
    executor = await KubernetesExecutor.connect(options=options, logs=store)
    engine = Engine(store=store, executor=executor, templates=DictTemplateGetter())
    try:
        [manifest] = load_documents(WORKFLOW, source="test")
        submitted = await engine.submit(manifest, namespace=NS)
        wf: dict[str, Any] = dict(await asyncio.wait_for(engine.wait(NS, submitted["metadata"]["name"]), 600))
    finally:
        await engine.close()
        await executor.close()
    pods = {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"}
    assert wf["status"]["phase"] == "Failed"
    assert pods["hello"]["outputs"]["result"] == "hello"
    assert pods["echo"]["message"] == "Error (exit code 3)"
