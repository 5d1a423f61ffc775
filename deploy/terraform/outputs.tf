output "artifact_bucket" {
  description = "S3 bucket for MLflow artifacts (s3://<bucket>/mlflow), the DVC remote (s3://<bucket>/dvc) and data."
  value       = aws_s3_bucket.artifacts.bucket
}

output "artifact_bucket_arn" {
  description = "ARN of the artifact bucket."
  value       = aws_s3_bucket.artifacts.arn
}

output "kms_key_arn" {
  description = "The KMS key of the bucket, the database, Kubernetes secrets and the logs."
  value       = aws_kms_key.main.arn
}

output "db_endpoint" {
  description = "host:port of the MLflow PostgreSQL database."
  value       = aws_db_instance.mlflow.endpoint
}

output "db_name" {
  description = "Database of the MLflow backend store."
  value       = aws_db_instance.mlflow.db_name
}

output "db_master_secret_arn" {
  description = "Secrets Manager secret holding the database master user's password (managed by RDS)."
  value       = aws_db_instance.mlflow.master_user_secret[0].secret_arn
}

output "mlflow_backend_store_uri" {
  description = "MLflow's --backend-store-uri without the password (take it from db_master_secret_arn)."
  value       = "postgresql://${aws_db_instance.mlflow.username}@${aws_db_instance.mlflow.endpoint}/${aws_db_instance.mlflow.db_name}?sslmode=require"
}

output "mlflow_artifacts_destination" {
  description = "MLflow's --artifacts-destination."
  value       = "s3://${aws_s3_bucket.artifacts.bucket}/mlflow"
}

output "dvc_remote" {
  description = "data.dvc_remote in mloop.yaml."
  value       = "s3://${aws_s3_bucket.artifacts.bucket}/dvc"
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name <cluster_name>)."
  value       = aws_eks_cluster.main.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.main.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA certificate of the Kubernetes API."
  value       = aws_eks_cluster.main.certificate_authority[0].data
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (for more IRSA roles)."
  value       = aws_iam_openid_connect_provider.cluster.arn
}

output "irsa_role_arn" {
  description = "Role for the chart's serviceAccount.annotations.\"eks.amazonaws.com/role-arn\"."
  value       = aws_iam_role.mloop.arn
}
