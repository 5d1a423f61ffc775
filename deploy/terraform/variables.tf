variable "name" {
  description = "Prefix of every resource name (bucket, database, cluster, roles)."
  type        = string
  default     = "mloop"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name, part of resource names and tags (prod, staging, ...)."
  type        = string
  default     = "prod"
}

variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# --- network: an existing VPC -------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC of the cluster and the database."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two availability zones) for the EKS nodes and the database."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "EKS and RDS Multi-AZ need subnets in at least two availability zones."
  }
}

# --- S3: artifacts and DVC ---------------------------------------------------------------------------------------

variable "artifact_noncurrent_days" {
  description = "Days a replaced or deleted object version is kept before it expires."
  type        = number
  default     = 90
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete non-empty buckets (never in production)."
  type        = bool
  default     = false
}

# --- PostgreSQL for MLflow ---------------------------------------------------------------------------------------

variable "db_engine_version" {
  description = "PostgreSQL major version of the MLflow backend store."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling limit in GiB."
  type        = number
  default     = 100
}

variable "db_name" {
  description = "Database MLflow uses."
  type        = string
  default     = "mlflow"
}

variable "db_username" {
  description = "Master user; its password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "mlflow"
}

variable "db_multi_az" {
  description = "A standby in a second availability zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups."
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "Protect the database from deletion (turn off only to destroy the stack)."
  type        = bool
  default     = true
}

# --- EKS -----------------------------------------------------------------------------------------------------------

variable "cluster_version" {
  description = "Kubernetes version of the EKS cluster (the Helm chart supports 1.30 and later)."
  type        = string
  default     = "1.33"
}

variable "cluster_endpoint_public_access" {
  description = "Expose the Kubernetes API endpoint publicly (restricted to cluster_endpoint_public_cidrs)."
  type        = bool
  default     = false
}

variable "cluster_endpoint_public_cidrs" {
  description = "CIDR blocks allowed to reach a public API endpoint."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "node_min_size" {
  description = "Smallest number of nodes."
  type        = number
  default     = 2
}

variable "node_desired_size" {
  description = "Number of nodes at creation (the cluster autoscaler owns it afterwards)."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Largest number of nodes."
  type        = number
  default     = 6
}

variable "node_disk_size" {
  description = "Root volume of each node in GiB."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Days the EKS control plane logs are kept."
  type        = number
  default     = 365
}

# --- the service account of the Helm release (IRSA) --------------------------------------------------------------

variable "k8s_namespace" {
  description = "Namespace of the mloop Helm release."
  type        = string
  default     = "mloop"
}

variable "k8s_service_account" {
  description = "Service account of the mloop pods: the chart's full name (the release name for a release called mloop)."
  type        = string
  default     = "mloop"
}
