"""Kubernetes manifests for a packaged version: Deployment, Service, HPA, KServe.

Written by ``shipyard package --k8s`` into ``k8s/``:

``deployment.yaml``
    The image with readiness (``/ready``) and liveness (``/health``) probes, CPU and memory
    requests and limits (the entry point starts one worker per CPU of the limit), a non-root
    security context, and the API key mounted from the Secret ``NAME-api-key``.
``service.yaml``
    A ClusterIP Service on port 80 to the container's 8080.
``hpa.yaml``
    An ``autoscaling/v2`` HorizontalPodAutoscaler on CPU use.
``inferenceservice.yaml``
    A KServe ``InferenceService`` running the same container; shipyard's server speaks the
    Open Inference Protocol (``/v2/models/NAME/infer``), so KServe's V2 clients work unchanged.

The Secret itself is not written (a key does not belong in a file next to manifests): the
README says how to create it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from shipyard.registry.store import ModelVersion

__all__ = ["USER_ID", "KubernetesSettings", "kubernetes_documents", "write_manifests"]

_PORT = 8080
USER_ID = 10001
"""The image's user id (``shipyard package`` creates that user)."""
_KEY_MOUNT = "/run/secrets/shipyard"


@dataclass(frozen=True)
class KubernetesSettings:
    """What the manifests ask of the cluster.

    Parameters
    ----------
    image
        The image reference the cluster pulls.
    cpu
        CPU request and limit (``"2"``, ``"500m"``); the workers follow the limit.
    memory
        Memory request and limit (``"1Gi"``).
    replicas
        Replicas at the start, and the autoscaler's minimum.
    max_replicas
        The autoscaler's maximum.
    target_cpu_percent
        Average CPU use the autoscaler keeps.
    """

    image: str
    cpu: str = "1"
    memory: str = "1Gi"
    replicas: int = 1
    max_replicas: int = 4
    target_cpu_percent: int = 70


def _k8s_name(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _container(version: ModelVersion, settings: KubernetesSettings) -> dict[str, Any]:
    resources = {"cpu": settings.cpu, "memory": settings.memory}
    return {
        "name": "kserve-container",
        "image": settings.image,
        "ports": [{"name": "http", "containerPort": _PORT, "protocol": "TCP"}],
        "env": [
            {"name": "SHIPYARD_API_KEY_FILE", "value": f"{_KEY_MOUNT}/api-key"},
            {"name": "PORT", "value": str(_PORT)},
        ],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": _PORT},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": _PORT},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {"path": "/health", "port": _PORT},
            "periodSeconds": 2,
            "failureThreshold": 60,
        },
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "api-key", "mountPath": _KEY_MOUNT, "readOnly": True}],
    }


def _key_volume(version: ModelVersion) -> dict[str, Any]:
    return {
        "name": "api-key",
        "secret": {"secretName": f"{_k8s_name(version.name)}-api-key", "defaultMode": 0o400},
    }


def kubernetes_documents(
    version: ModelVersion, settings: KubernetesSettings
) -> dict[str, dict[str, Any]]:
    """Return the manifests as ``{file name: document}``."""
    name = _k8s_name(version.name)
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/version": str(version.version),
        "app.kubernetes.io/managed-by": "shipyard",
    }
    selector = {"app.kubernetes.io/name": name}
    metadata = {"name": name, "labels": labels}
    container = _container(version, settings)
    pod_security = {"runAsNonRoot": True, "runAsUser": USER_ID, "fsGroup": USER_ID}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": pod_security,
                    "containers": [{**container, "name": name}],
                    "volumes": [_key_volume(version)],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": _PORT, "protocol": "TCP"}],
        },
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": settings.replicas,
            "maxReplicas": max(settings.max_replicas, settings.replicas),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": settings.target_cpu_percent,
                        },
                    },
                }
            ],
        },
    }
    inference_service = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
        },
        "spec": {
            "predictor": {
                "minReplicas": settings.replicas,
                "maxReplicas": max(settings.max_replicas, settings.replicas),
                "securityContext": pod_security,
                "containers": [
                    {
                        **container,
                        "env": [*container["env"], {"name": "PROTOCOL", "value": "v2"}],
                    }
                ],
                "volumes": [_key_volume(version)],
            }
        },
    }
    return {
        "deployment.yaml": deployment,
        "service.yaml": service,
        "hpa.yaml": autoscaler,
        "inferenceservice.yaml": inference_service,
    }


def write_manifests(
    folder: Path, version: ModelVersion, settings: KubernetesSettings
) -> tuple[Path, ...]:
    """Write :func:`kubernetes_documents` as YAML files into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, document in kubernetes_documents(version, settings).items():
        path = folder / file_name
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        written.append(path)
    return tuple(written)
