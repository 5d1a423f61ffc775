"""The protocols platforms already speak, on the same server and the same ``Service.score`` as ``/v1/predict``.

- ``mlflow``: MLflow's scoring-server body formats (JSON and CSV) as records;
- ``sagemaker``: ``POST /invocations`` (MLflow's and SageMaker's) and ``GET /ping``;
- ``v2``: the Open Inference Protocol v2 (KServe);
- ``openapi``: their bodies in the OpenAPI document.

Every record is validated by the version's request model, scored by the (compiled) model and logged
with its request id, which is returned in the ``x-request-ids`` header (and V2's ``parameters``).
"""
