"""Deployment and interoperability: container images, Kubernetes, ONNX and MLflow, imports.

A front door beside :mod:`shipyard.serving`: it reads the registry and writes files for other
platforms (:mod:`~shipyard.deploy.container`, :mod:`~shipyard.deploy.kubernetes`,
:mod:`~shipyard.deploy.onnx_export`, :mod:`~shipyard.deploy.mlflow_export`), or brings models
made elsewhere into the registry (:mod:`~shipyard.deploy.imports`). Heavy libraries (ONNX,
MLflow) are imported only by the command that needs them.
"""
