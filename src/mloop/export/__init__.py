"""`mloop export`: the pipeline's stages as an Airflow DAG file or a Kubeflow pipeline.

Above the loop's layers, beside ``mloop.demo``: it writes files that run the mloop command and never
imports a stage itself.
"""
