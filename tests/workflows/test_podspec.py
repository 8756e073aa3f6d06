"""
The Kubernetes Pod builder (:mod:`workflows.executors.podspec`), pure.

PodRequests come from the real scheduling core (``operate`` over Argo-shaped workflows written
here), so the tests cover what the engine actually asks for. Every manifest built is checked
against the Kubernetes 1.33 schema in strict mode (unknown fields rejected) with
kubernetes-validate, and built twice to show the output is deterministic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from workflows.errors import InvalidSpec
from workflows.executors.base import Container, PodRequest, PodResult
from workflows.executors.podspec import (
    EMISSARY,
    HELPER_DIR,
    HELPER_VOLUME,
    ImageCommand,
    PodConfig,
    avoid_hosts,
    build_pod,
    claim_name,
    claims_for,
    images_without_command,
    label_value,
    parse_patch,
    strategic_merge,
)
from workflows.loading import load_documents
from workflows.model import wire
from workflows.model.ids import NodeId
from workflows.model.status import NodePhase, WorkflowStatus
from workflows.resolution import DictTemplateGetter
from workflows.scheduling.commands import Observation, PodFinished, Run, StartPod
from workflows.scheduling.operator import operate

K8S_VERSION = "1.33.0"
# Kubernetes' label value rule (apimachinery validation.IsValidLabelValue); the schema does not check it.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = PodConfig(helper_image="ghcr.io/gittrigger/gittrigger:test", server_url="http://gittrigger.ci:8080",
                   artifact_token="t0ken")
Manifest = dict[str, Any]


def workflow_doc(body: str, *, name: str = "wf-1") -> dict[str, Any]:
    doc = load_documents("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n" + body, source="<test>")[0]
    doc["metadata"] = {"name": name, "namespace": "argo", "uid": "uid-1"}
    return doc


def requests_of(body: str, *, name: str = "wf-1", hosts: Sequence[str | None] = ()) -> list[PodRequest]:
    """The pods the core starts for a workflow; each host in ``hosts`` fails one more round of them there."""
    workflow = wire.parse_object(workflow_doc(body, name=name))
    status, observed, pods = WorkflowStatus(), list[Observation](), list[PodRequest]()
    for host in [*hosts, None]:
        decision = operate(Run(workflow=workflow, status=status), observed, now=NOW, templates=DictTemplateGetter())
        status = decision.status
        started = [c.pod for c in decision.commands if isinstance(c, StartPod)]
        pods += started
        observed = [PodFinished(node_id=p.node_id, result=PodResult(phase=NodePhase.FAILED, exit_code=1,
                                                                     host_node_name=host)) for p in started]
    return pods


def only(body: str, **kwargs: Any) -> PodRequest:
    pods = requests_of(body, **kwargs)
    assert len(pods) == 1, [p.pod_name for p in pods]
    return pods[0]


def valid(manifest: Manifest) -> Manifest:
    """The manifest, after checking it against the Kubernetes schema (strict) and JSON round trip."""
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    assert json.loads(json.dumps(manifest)) == manifest
    return manifest


def build(pod: PodRequest, config: PodConfig = CONFIG) -> Manifest:
    manifest = valid(build_pod(pod, config=config))
    assert build_pod(pod, config=config) == manifest, "same request, same Pod"
    return manifest


def container(manifest: Manifest, name: str) -> dict[str, Any]:
    spec = manifest["spec"]
    every: list[dict[str, Any]] = [*spec.get("initContainers", ()), *spec["containers"]]
    found = [c for c in every if c["name"] == name]
    assert len(found) == 1, name
    return found[0]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", ())}


def mounts_of(c: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {m["mountPath"]: (m["name"], m.get("subPath")) for m in c.get("volumeMounts", ())}


# -- the broad table: shapes users write, each must make a valid Pod ------------------------

TEMPLATES: dict[str, str] = {
    "container": """
spec:
  entrypoint: hello
  templates:
  - name: hello
    container: {image: busybox, command: [echo], args: ["hello world"]}
""",
    "script": """
spec:
  entrypoint: gen
  templates:
  - name: gen
    script:
      image: python:alpine3.23
      command: [python]
      source: |
        import random
        print(random.randint(1, 100))
""",
    "sidecar-dind-privileged": """
spec:
  entrypoint: dind
  templates:
  - name: dind
    container:
      image: docker:27
      command: [sh, -c]
      args: ["until docker ps; do sleep 3; done; docker run --rm alpine true"]
      env: [{name: DOCKER_HOST, value: 127.0.0.1}]
      volumeMounts: [{name: work, mountPath: /work}]
    volumes: [{name: work, emptyDir: {}}]
    sidecars:
    - name: dind
      image: docker:27-dind
      command: [dockerd-entrypoint.sh]
      env: [{name: DOCKER_TLS_CERTDIR, value: ""}]
      securityContext: {privileged: true}
      mirrorVolumeMounts: true
""",
    "sidecar-nginx": """
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: curlimages/curl, command: [sh, -c], args: ["curl -s localhost"]}
    sidecars:
    - name: nginx
      image: nginx:1.27
      command: [nginx, -g, "daemon off;"]
      ports: [{containerPort: 80}]
      readinessProbe: {httpGet: {path: /, port: 80}}
""",
    "volumes-and-claims": """
spec:
  entrypoint: write
  volumeClaimTemplates:
  - metadata: {name: workdir}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  - metadata: {name: unused}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  volumes:
  - {name: existing, persistentVolumeClaim: {claimName: my-existing-volume}}
  - {name: config, configMap: {name: my-config}}
  - {name: creds, secret: {secretName: my-secret}}
  templates:
  - name: write
    container:
      image: alpine:3.23
      command: [sh, -c]
      args: ["echo hi | tee /mnt/vol/out.txt"]
      volumeMounts:
      - {name: workdir, mountPath: /mnt/vol}
      - {name: existing, mountPath: /mnt/existing, readOnly: true}
      - {name: config, mountPath: /etc/config}
      - {name: creds, mountPath: /etc/creds}
      - {name: scratch, mountPath: /scratch}
    volumes: [{name: scratch, emptyDir: {medium: Memory}}]
""",
    "daemon-probe": """
spec:
  entrypoint: server
  templates:
  - name: server
    daemon: true
    container:
      image: nginx:1.27
      command: [nginx, -g, "daemon off;"]
      readinessProbe:
        httpGet: {path: /, port: 80}
        initialDelaySeconds: 2
        timeoutSeconds: 1
""",
    "container-set": """
spec:
  entrypoint: set
  templates:
  - name: set
    volumes: [{name: workspace, emptyDir: {}}]
    containerSet:
      volumeMounts: [{name: workspace, mountPath: /workspace}]
      containers:
      - {name: a, image: argoproj/argosay:v2, command: [sh, -c], args: ["echo a > /workspace/a"]}
      - {name: b, image: argoproj/argosay:v2, command: [sh, -c], args: ["echo b"]}
      - {name: main, image: argoproj/argosay:v2, command: [sh, -c], args: ["cat /workspace/a"], dependencies: [a, b]}
    outputs:
      parameters:
      - name: a
        valueFrom: {path: /workspace/a}
""",
    "retry-anti-affinity": """
spec:
  entrypoint: flaky
  templates:
  - name: flaky
    retryStrategy:
      limit: 3
      affinity: {nodeAntiAffinity: {}}
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms:
          - matchExpressions: [{key: disk, operator: In, values: [ssd]}]
    container: {image: alpine, command: [sh, -c, "exit 1"]}
""",
    "pod-spec-patch": """
spec:
  entrypoint: hello
  arguments:
    parameters: [{name: cpu, value: 100m}, {name: mem-limit, value: 100Mi}]
  podSpecPatch: |
    containers:
      - name: main
        resources:
          limits:
            memory: "{{workflow.parameters.mem-limit}}"
  templates:
  - name: hello
    podSpecPatch: '{"containers":[{"name":"main", "resources":{"limits":{"cpu": "{{workflow.parameters.cpu}}"}}}]}'
    container: {image: busybox, command: [echo], args: ["hello world"]}
""",
    "resources": """
spec:
  entrypoint: big
  templates:
  - name: big
    container:
      image: busybox
      command: [sh, -c, "true"]
      resources:
        requests: {cpu: 500m, memory: 256Mi}
        limits: {cpu: "1", memory: 512Mi, ephemeral-storage: 1Gi}
""",
    "scheduling": """
spec:
  entrypoint: placed
  nodeSelector: {kubernetes.io/os: linux}
  tolerations:
  - {key: dedicated, operator: Equal, value: ci, effect: NoSchedule}
  podPriorityClassName: high
  imagePullSecrets: [{name: registry}]
  securityContext: {runAsNonRoot: true, runAsUser: 8737}
  hostNetwork: false
  dnsConfig: {nameservers: [1.2.3.4]}
  templates:
  - name: placed
    nodeSelector: {disktype: ssd}
    tolerations:
    - {key: gpu, operator: Exists, effect: NoSchedule}
    hostAliases: [{ip: 10.0.0.1, hostnames: [git.local]}]
    priorityClassName: higher
    activeDeadlineSeconds: 300
    metadata:
      labels: {team: ci}
      annotations: {note: "built by a test"}
    container:
      image: busybox
      command: [sh, -c, "true"]
      env:
      - name: POD_NAME
        valueFrom: {fieldRef: {fieldPath: metadata.name}}
      - name: TOKEN
        valueFrom: {secretKeyRef: {name: my-secret, key: token}}
      envFrom: [{configMapRef: {name: my-config}}]
      securityContext: {allowPrivilegeEscalation: false}
""",
    "artifacts-in-and-out": """
spec:
  entrypoint: work
  templates:
  - name: work
    inputs:
      artifacts:
      - name: notes
        path: /in/notes.txt
        raw: {data: "hello"}
      - name: src
        path: /src
        git: {repo: https://github.com/argoproj/argo-workflows.git, revision: main}
    outputs:
      parameters:
      - name: count
        valueFrom: {path: /out/count}
      artifacts:
      - {name: report, path: /out/report}
    container: {image: alpine, command: [sh, -c, "wc -l /in/notes.txt > /out/count"]}
""",
    "init-containers": """
spec:
  entrypoint: main
  templates:
  - name: main
    initContainers:
    - name: prepare
      image: alpine
      command: [sh, -c, "echo ready > /work/flag"]
      mirrorVolumeMounts: true
    volumes: [{name: work, emptyDir: {}}]
    container:
      image: alpine
      command: [cat, /work/flag]
      volumeMounts: [{name: work, mountPath: /work}]
""",
}


@pytest.mark.parametrize("body", list(TEMPLATES.values()), ids=list(TEMPLATES))
def test_every_template_makes_a_valid_deterministic_pod(body: str) -> None:
    """Each shape becomes a Pod the API server's schema accepts (strict), the same every time."""
    for pod in requests_of(body, hosts=["node-a"]):
        manifest = build(pod)
        assert manifest["metadata"]["name"] == pod.pod_name
        assert [c["name"] for c in manifest["spec"]["containers"]][-1] == "wait"
        assert manifest["spec"]["initContainers"][0]["name"] == "init"


def test_long_workflow_names_make_valid_pods() -> None:
    """A 200-character workflow name still gives a valid Pod: label values are cut and hashed."""
    name = "nightly-" + "x" * 192
    manifest = build(only(TEMPLATES["volumes-and-claims"], name=name))
    label = manifest["metadata"]["labels"]["workflows.argoproj.io/workflow"]
    assert len(label) <= 63 and label == label_value(name) and label != label_value(name + "y")
    claim = next(v for v in manifest["spec"]["volumes"] if v["name"] == "workdir")
    assert claim["persistentVolumeClaim"]["claimName"] == claim_name(name, "workdir")


# -- the main container: emissary, outputs, staged files and artifacts ----------------------


def test_main_runs_under_the_emissary() -> None:
    """command + args become the emissary's arguments; args is emptied."""
    main = container(build(only(TEMPLATES["container"])), "main")
    assert main["command"] == [EMISSARY, "--", "echo", "hello world"]
    assert "args" not in main
    assert env_of(main)["GITTRIGGER_CONTAINER"] == "main"
    assert mounts_of(main)[HELPER_DIR] == (HELPER_VOLUME, None)


def test_script_source_is_staged_and_mounted_where_the_command_reads_it() -> None:
    """The script file is PodRequest.files[0]: mounted from inputs/0 at its path, run by the command."""
    pod = only(TEMPLATES["script"])
    main = container(build(pod), "main")
    script = pod.files[0].path
    assert main["command"] == [EMISSARY, "--", "python", script]
    assert mounts_of(main)[script] == (HELPER_VOLUME, "inputs/0")
    assert "source" not in main


def test_outputs_and_input_artifacts() -> None:
    """Output paths are listed for the emissary (parameters, then artifacts); input artifacts are
    mounted from artifacts/<i> at their paths."""
    main = container(build(only(TEMPLATES["artifacts-in-and-out"])), "main")
    assert env_of(main)["GITTRIGGER_OUTPUTS"] == "0=/out/count:1=/out/report"
    assert mounts_of(main)["/in/notes.txt"] == (HELPER_VOLUME, "artifacts/0")
    assert mounts_of(main)["/src"] == (HELPER_VOLUME, "artifacts/1")


def test_user_env_keeps_value_from_and_cannot_override_ours() -> None:
    """valueFrom/envFrom reach the Pod as written; a user GITTRIGGER_OUTPUTS is replaced by ours."""
    main = container(build(only(TEMPLATES["scheduling"])), "main")
    assert env_of(main)["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert main["envFrom"] == [{"configMapRef": {"name": "my-config"}}]
    pod = _pod(Container(name="main", image="busybox", command=("true",),
                         raw={"env": [{"name": "GITTRIGGER_OUTPUTS", "value": "0=/etc/passwd"}]}))
    assert [e for e in container(build(pod), "main")["env"] if e["name"] == "GITTRIGGER_OUTPUTS"] == [
        {"name": "GITTRIGGER_OUTPUTS", "value": ""}]


def _pod(*mains: Container, **fields: Any) -> PodRequest:
    return PodRequest(node_id=NodeId("wf-1"), pod_name="wf-1", namespace="argo", workflow_name="wf-1",
                      workflow_uid="uid-1", template_name="t", main=mains, **fields)


@pytest.mark.parametrize(("c", "images", "expected"), [
    (Container(name="main", image="a", command=("run",), args=("x",)), {}, ["run", "x"]),
    (Container(name="main", image="a", args=("x",)), {"a": ImageCommand(entrypoint=("/ep",), cmd=("dflt",))},
     ["/ep", "x"]),
    (Container(name="main", image="a"), {"a": ImageCommand(entrypoint=("/ep",), cmd=("dflt",))}, ["/ep", "dflt"]),
    (Container(name="main", image="a"), {"a": ImageCommand(entrypoint=(), cmd=("/bin/app", "serve"))},
     ["/bin/app", "serve"]),
], ids=["command-given", "entrypoint-with-args", "entrypoint-and-cmd", "cmd-only"])
def test_command_follows_kubernetes_rules_for_image_defaults(
        c: Container, images: dict[str, ImageCommand], expected: list[str]) -> None:
    """Without a command, the image's ENTRYPOINT runs with the args, or with its CMD when no args."""
    config = PodConfig(helper_image="h", server_url="http://s", artifact_token="t", images=images)
    assert container(build(_pod(c), config), "main")["command"] == [EMISSARY, "--", *expected]


def test_image_without_known_command_is_refused() -> None:
    """The emissary needs the command; an unknown image entrypoint is an InvalidSpec naming the field."""
    pod = _pod(Container(name="main", image="influxdb:1.2"))
    assert images_without_command(pod) == ("influxdb:1.2",)
    with pytest.raises(InvalidSpec, match=r"main\.command: image 'influxdb:1.2' is used without a command"):
        build_pod(pod, config=CONFIG)


@pytest.mark.parametrize("name", ["init", "wait"], ids=["init", "wait"])
def test_helper_container_names_are_reserved(name: str) -> None:
    """A user container named like a helper would make two containers with one name."""
    pod = _pod(Container(name="main", image="a", command=("x",)),
               sidecars=(Container(name=name, image="b", command=("y",)),))
    with pytest.raises(InvalidSpec, match="reserved"):
        build_pod(pod, config=CONFIG)


@pytest.mark.parametrize(("own", "defaults", "expected"), [
    ({}, {}, None),
    ({}, {"requests": {"cpu": "100m"}}, {"requests": {"cpu": "100m"}}),
    ({"requests": {"cpu": "1"}}, {"requests": {"cpu": "100m", "memory": "64Mi"}},
     {"requests": {"cpu": "1", "memory": "64Mi"}}),
    ({"limits": {"memory": "32Mi"}}, {"requests": {"memory": "64Mi", "cpu": "10m"}},
     {"requests": {"cpu": "10m"}, "limits": {"memory": "32Mi"}}),
    ({"limits": {"cpu": "2"}}, {"limits": {"cpu": "1", "memory": "1Gi"}}, {"limits": {"cpu": "2", "memory": "1Gi"}}),
], ids=["none", "default-only", "own-wins-per-resource", "no-default-request-over-own-limit", "limits-merge"])
def test_default_resources_for_main_containers(own: dict[str, Any], defaults: dict[str, Any],
                                               expected: dict[str, Any] | None) -> None:
    """The executor's defaults fill what the container leaves open, per resource."""
    config = PodConfig(helper_image="h", server_url="http://s", artifact_token="t", default_resources=defaults)
    main = container(build(_pod(Container(name="main", image="a", command=("x",), raw={"resources": own})), config),
                     "main")
    assert main.get("resources") == expected


# -- sidecars, init containers, volumes --------------------------------------------------


def test_sidecars_are_native_and_mirror_the_main_mounts() -> None:
    """Sidecars are initContainers with restartPolicy Always; mirrorVolumeMounts copies main's mounts
    (not the helper's own directory) and the Argo-only key is dropped."""
    manifest = build(only(TEMPLATES["sidecar-dind-privileged"]))
    names = [c["name"] for c in manifest["spec"]["initContainers"]]
    assert names == ["init", "dind"]
    dind = container(manifest, "dind")
    assert dind["restartPolicy"] == "Always"
    assert dind["securityContext"] == {"privileged": True}
    assert mounts_of(dind) == {"/work": ("work", None)}
    assert "mirrorVolumeMounts" not in dind
    assert [c["name"] for c in manifest["spec"]["containers"]] == ["main", "wait"]


def test_mirrored_mounts_include_input_artifacts() -> None:
    """As in Argo, mirrorVolumeMounts shows the sidecar the main container's artifacts too."""
    body = TEMPLATES["artifacts-in-and-out"] + """    sidecars:
    - {name: watcher, image: alpine, command: [sleep, "3600"], mirrorVolumeMounts: true}
"""
    manifest = build(only(body))
    assert mounts_of(container(manifest, "watcher")) == {
        "/in/notes.txt": (HELPER_VOLUME, "artifacts/0"), "/src": (HELPER_VOLUME, "artifacts/1")}
    assert container(manifest, "watcher")["command"] == ["sleep", "3600"]  # no emissary for sidecars


def test_user_init_containers_run_after_ours_and_before_sidecars() -> None:
    """Our init stages files first; the user's init containers may then read them."""
    manifest = build(only(TEMPLATES["init-containers"]))
    prepare = container(manifest, "prepare")
    assert [c["name"] for c in manifest["spec"]["initContainers"]] == ["init", "prepare"]
    assert "restartPolicy" not in prepare and mounts_of(prepare) == {"/work": ("work", None)}


def test_volumes_claims_and_only_mounted_ones() -> None:
    """Claims become PVC volumes named <workflow>-<claim>; volumes no container mounts are left out."""
    volumes = {v["name"]: v for v in build(only(TEMPLATES["volumes-and-claims"]))["spec"]["volumes"]}
    assert sorted(volumes) == sorted([HELPER_VOLUME, "workdir", "existing", "config", "creds", "scratch"])
    assert volumes["workdir"] == {"name": "workdir", "persistentVolumeClaim": {"claimName": "wf-1-workdir"}}
    assert volumes["existing"]["persistentVolumeClaim"] == {"claimName": "my-existing-volume"}
    assert volumes["scratch"]["emptyDir"] == {"medium": "Memory"}
    assert volumes[HELPER_VOLUME] == {"name": HELPER_VOLUME, "emptyDir": {}}


def test_container_set_containers_share_their_mounts() -> None:
    """Each containerSet container runs under the emissary with the set's volumeMounts; no
    `dependencies` key reaches Kubernetes."""
    manifest = build(only(TEMPLATES["container-set"]))
    assert [c["name"] for c in manifest["spec"]["containers"]] == ["a", "b", "main", "wait"]
    for name in ("a", "b", "main"):
        c = container(manifest, name)
        assert mounts_of(c)["/workspace"] == ("workspace", None) and "dependencies" not in c
        assert c["command"][:2] == [EMISSARY, "--"] and env_of(c)["GITTRIGGER_CONTAINER"] == name


def test_daemon_keeps_its_readiness_probe() -> None:
    """The probe the executor waits on is the template's, unchanged."""
    main = container(build(only(TEMPLATES["daemon-probe"])), "main")
    assert main["readinessProbe"] == {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 2,
                                      "timeoutSeconds": 1}


def test_claims_for_a_run() -> None:
    """One PVC per claim template, named and labelled for the run."""
    claims = claims_for(workflow_doc(TEMPLATES["volumes-and-claims"]))
    assert [c["metadata"]["name"] for c in claims] == ["wf-1-workdir", "wf-1-unused"]
    first = claims[0]
    assert first["metadata"]["namespace"] == "argo"
    assert first["metadata"]["labels"] == {"workflows.argoproj.io/workflow": "wf-1",
                                           "app.kubernetes.io/managed-by": "gittrigger"}
    assert first["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    for claim in claims:
        kubernetes_validate.validate(claim, K8S_VERSION, strict=True)
    assert claims_for(workflow_doc(TEMPLATES["volumes-and-claims"]), namespace="ci")[0]["metadata"]["namespace"] == "ci"


def test_claim_without_name_is_refused() -> None:
    doc = workflow_doc("spec:\n  volumeClaimTemplates:\n  - spec: {}\n")
    with pytest.raises(InvalidSpec, match=r"volumeClaimTemplates\[0\]\.metadata\.name"):
        claims_for(doc)


# -- pod-level fields ------------------------------------------------------------------------


def test_pod_level_fields_template_over_workflow() -> None:
    """Scheduling, security and metadata fields land on the Pod; the template's win over the workflow's."""
    manifest = build(only(TEMPLATES["scheduling"]))
    spec, meta = manifest["spec"], manifest["metadata"]
    assert spec["nodeSelector"] == {"disktype": "ssd"}
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["priorityClassName"] == "higher"
    assert spec["hostAliases"] == [{"ip": "10.0.0.1", "hostnames": ["git.local"]}]
    assert spec["activeDeadlineSeconds"] == 300
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 8737}
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["restartPolicy"] == "Never"
    assert meta["labels"] == {"workflows.argoproj.io/workflow": "wf-1", "team": "ci",
                              "app.kubernetes.io/managed-by": "gittrigger", "workflows.argoproj.io/completed": "false"}
    assert meta["annotations"]["note"] == "built by a test"
    assert meta["annotations"]["workflows.argoproj.io/node-id"] == "wf-1"
    assert meta["namespace"] == "argo"


def test_executor_settings() -> None:
    """Namespace, service account, pull secrets and extra labels come from the executor's config;
    the contract's labels cannot be overridden by a template."""
    config = PodConfig(helper_image="h:1", server_url="http://s", artifact_token="t", namespace="runs",
                       service_account="runner", image_pull_secrets=("ghcr", "registry"),
                       labels={"env": "prod", "app.kubernetes.io/managed-by": "someone"})
    manifest = build(only(TEMPLATES["scheduling"]), config)
    assert manifest["metadata"]["namespace"] == "runs"
    assert manifest["spec"]["serviceAccountName"] == "runner"
    assert manifest["spec"]["imagePullSecrets"] == [{"name": "registry"}, {"name": "ghcr"}]
    assert manifest["metadata"]["labels"]["env"] == "prod"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gittrigger"
    wait = container(manifest, "wait")
    assert wait["image"] == "h:1" and wait["command"] == ["gittrigger", "pod-wait"]
    assert env_of(wait)["GITTRIGGER_ARTIFACT_TOKEN"] == "t"


def test_both_pod_spec_patches_apply_workflow_first() -> None:
    """Argo applies the workflow's podSpecPatch (YAML, globals substituted), then the template's (JSON)."""
    main = container(build(only(TEMPLATES["pod-spec-patch"])), "main")
    assert main["resources"] == {"limits": {"memory": "100Mi", "cpu": "100m"}}
    assert main["command"][0] == EMISSARY


def test_bad_pod_spec_patch_is_an_invalid_spec() -> None:
    pod = _pod(Container(name="main", image="a", command=("x",)), pod_fields={"podSpecPatch": "containers: [a"})
    with pytest.raises(InvalidSpec, match="podSpecPatch"):
        build_pod(pod, config=CONFIG)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"nodeName": "n1"}', {"nodeName": "n1"}),
    ("nodeName: n1\n", {"nodeName": "n1"}),
    ({"nodeName": "n1"}, {"nodeName": "n1"}),
], ids=["json", "yaml", "map"])
def test_parse_patch(text: Any, expected: dict[str, Any]) -> None:
    assert parse_patch(text) == expected


@pytest.mark.parametrize("text", ["[1, 2]", "a: 1\n---\nb: 2\n", "{"], ids=["list", "two-documents", "broken"])
def test_parse_patch_refuses(text: str) -> None:
    with pytest.raises(InvalidSpec, match="podSpecPatch"):
        parse_patch(text)


MAIN = {"name": "main", "image": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "volumeMounts": [{"name": "v", "mountPath": "/v"}], "args": ["x", "y"],
        "resources": {"limits": {"cpu": "1"}}}
WAIT = {"name": "wait", "image": "h"}
BASE = {"containers": [MAIN, WAIT], "tolerations": [{"key": "a", "operator": "Exists"}],
        "volumes": [{"name": "v", "emptyDir": {}}], "nodeSelector": {"a": "1", "b": "2"}}


@pytest.mark.parametrize(("patch", "expected"), [
    ({"containers": [{"name": "main", "resources": {"limits": {"memory": "1Gi"}}}]},
     {**BASE, "containers": [{**MAIN, "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}, WAIT]}),
    ({"containers": [{"name": "extra", "image": "x"}]},
     {**BASE, "containers": [MAIN, WAIT, {"name": "extra", "image": "x"}]}),
    ({"containers": [{"name": "main", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}]},
     {**BASE, "containers": [{**MAIN, "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"},
                                              {"name": "C", "value": "4"}]}, WAIT]}),
    ({"containers": [{"name": "main", "volumeMounts": [{"mountPath": "/v", "readOnly": True}]}]},
     {**BASE, "containers": [{**MAIN, "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": True}]}, WAIT]}),
    ({"containers": [{"name": "main", "args": ["z"]}]}, {**BASE, "containers": [{**MAIN, "args": ["z"]}, WAIT]}),
    ({"tolerations": [{"key": "b", "operator": "Exists"}]},
     {**BASE, "tolerations": [{"key": "b", "operator": "Exists"}]}),
    ({"nodeSelector": {"a": None, "c": "3"}}, {**BASE, "nodeSelector": {"b": "2", "c": "3"}}),
    ({"nodeSelector": {"$patch": "replace", "c": "3"}}, {**BASE, "nodeSelector": {"c": "3"}}),
    ({"nodeSelector": None}, {k: v for k, v in BASE.items() if k != "nodeSelector"}),
    ({"containers": [{"name": "wait", "$patch": "delete"}]}, {**BASE, "containers": [MAIN]}),
    ({"containers": [{"$patch": "replace"}, {"name": "only", "image": "o"}]},
     {**BASE, "containers": [{"name": "only", "image": "o"}]}),
    ({"volumes": [{"name": "v", "configMap": {"name": "c"}, "$retainKeys": ["name", "configMap"]}]},
     {**BASE, "volumes": [{"name": "v", "configMap": {"name": "c"}}]}),
    ({"affinity": {"nodeAffinity": {"x": 1}}, "$setElementOrder/containers": [{"name": "wait"}]},
     {**BASE, "affinity": {"nodeAffinity": {"x": 1}}}),
], ids=["container-map-merge", "container-appended", "env-by-name", "mount-by-path", "args-replaced",
        "tolerations-replaced", "null-deletes-key", "map-replace", "null-deletes-field", "item-delete",
        "list-replace", "retain-keys", "new-field-directive-ignored"])
def test_strategic_merge(patch: dict[str, Any], expected: dict[str, Any]) -> None:
    """Kubernetes' strategic merge for the Pod fields people patch; the original is not modified."""
    before = json.dumps(BASE, sort_keys=True)
    assert strategic_merge(BASE, patch) == expected
    assert json.dumps(BASE, sort_keys=True) == before


# -- retries on other machines --------------------------------------------------------------

HOSTNAME_NOT_IN = "kubernetes.io/hostname"


def _expressions(manifest: Manifest) -> list[list[dict[str, Any]]]:
    terms = manifest["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return [t["matchExpressions"] for t in terms["nodeSelectorTerms"]]


def test_retries_avoid_the_hosts_where_attempts_failed() -> None:
    """Each retry's pod excludes every host an earlier attempt failed on, in the template's affinity."""
    pods = requests_of(TEMPLATES["retry-anti-affinity"], hosts=["node-a", "node-b", "node-a"])
    assert [p.avoid_hosts for p in pods] == [(), ("node-a",), ("node-a", "node-b"), ("node-a", "node-b")]
    assert _expressions(build(pods[2])) == [[
        {"key": "disk", "operator": "In", "values": ["ssd"]},
        {"key": HOSTNAME_NOT_IN, "operator": "NotIn", "values": ["node-a", "node-b"]},
    ]]
    assert "affinity" in build(pods[0])["spec"]  # the template's own, without a hostname rule
    assert all(e["key"] == "disk" for terms in _expressions(build(pods[0])) for e in terms)


def test_retries_without_node_anti_affinity_go_anywhere() -> None:
    body = TEMPLATES["retry-anti-affinity"].replace("      affinity: {nodeAntiAffinity: {}}\n", "")
    assert [p.avoid_hosts for p in requests_of(body, hosts=["node-a", "node-b"])] == [(), (), ()]


def test_hosts_of_failed_attempts_are_recorded_on_nodes() -> None:
    """Argo's hostNodeName lands in the node status wire form."""
    workflow = wire.parse_object(workflow_doc(TEMPLATES["container"]))
    first = operate(Run(workflow=workflow, status=WorkflowStatus()), [], now=NOW, templates=DictTemplateGetter())
    pod = next(c.pod for c in first.commands if isinstance(c, StartPod))
    done = PodFinished(node_id=pod.node_id, result=PodResult(phase=NodePhase.FAILED, host_node_name="node-a"))
    second = operate(Run(workflow=workflow, status=first.status), [done], now=NOW, templates=DictTemplateGetter())
    assert wire.dump_node(second.status.nodes[pod.node_id])["hostNodeName"] == "node-a"


@pytest.mark.parametrize(("affinity", "expected"), [
    (None, {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": HOSTNAME_NOT_IN, "operator": "NotIn", "values": ["h1", "h2"]}]}]}}}),
    ({"podAntiAffinity": {"x": 1}}, {"podAntiAffinity": {"x": 1}, "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": HOSTNAME_NOT_IN, "operator": "NotIn", "values": ["h1", "h2"]}]}]}}}),
    ({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}]}}},
     {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
         {"matchExpressions": [{"key": "a", "operator": "Exists"},
                               {"key": HOSTNAME_NOT_IN, "operator": "NotIn", "values": ["h1", "h2"]}]},
         {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}],
          "matchExpressions": [{"key": HOSTNAME_NOT_IN, "operator": "NotIn", "values": ["h1", "h2"]}]}]}}}),
    ({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": HOSTNAME_NOT_IN, "operator": "NotIn", "values": ["h0", "h1"]}]}]}}},
     {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
         {"matchExpressions": [{"key": HOSTNAME_NOT_IN, "operator": "NotIn", "values": ["h0", "h1", "h2"]}]}]}}}),
    ({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]}},
     {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}],
                       "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                           {"matchExpressions": [{"key": HOSTNAME_NOT_IN, "operator": "NotIn",
                                                  "values": ["h1", "h2"]}]}]}}}),
], ids=["none", "pod-anti-affinity-kept", "every-term", "widens-existing", "preferred-kept"])
def test_avoid_hosts_merges_with_the_template_affinity(affinity: dict[str, Any] | None,
                                                        expected: dict[str, Any]) -> None:
    """Terms are ORed, so the hostname rule joins each of them; other affinity is kept."""
    assert avoid_hosts(affinity, ["h1", "h2", "h1"]) == expected


# -- names and labels --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("wf-1", "wf-1"),
    ("", ""),
    ("a" * 63, "a" * 63),
    ("Build_1.2", "Build_1.2"),
], ids=["plain", "empty", "63-chars", "mixed-allowed"])
def test_label_value_keeps_valid_values(text: str, expected: str) -> None:
    assert label_value(text) == expected


@pytest.mark.parametrize("text", ["a" * 64, "-leading", "trailing.", "with space", "x/y:z", "é" * 10, "-" * 80],
                         ids=["64-chars", "leading-dash", "trailing-dot", "space", "slash-colon", "unicode",
                              "only-dashes"])
def test_label_value_makes_invalid_values_valid(text: str) -> None:
    """Invalid values are cleaned, cut to 63 and suffixed with a hash of the original (stays unique)."""
    value = label_value(text)
    assert LABEL_VALUE.match(value), value
    assert len(value) <= 63 and value != text and value == label_value(text)
