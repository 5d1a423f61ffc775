# mloop on AWS: an S3 bucket for MLflow artifacts and DVC, PostgreSQL (RDS) for MLflow's backend store,
# an EKS cluster with a managed node group, and an IAM role for the mloop service account (IRSA).
# s3.tf, rds.tf, eks.tf and iam.tf hold each part; one KMS key encrypts them all.

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        Project     = var.name
        Environment = var.environment
        ManagedBy   = "terraform"
      },
      var.tags,
    )
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  prefix       = "${var.name}-${var.environment}"
  account_id   = data.aws_caller_identity.current.account_id
  partition    = data.aws_partition.current.partition
  cluster_name = local.prefix
}

# One customer-managed key for the bucket, the database, Kubernetes secrets and the control plane logs.
resource "aws_kms_key" "main" {
  description             = "${local.prefix}: S3 artifacts, RDS, EKS secrets and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.prefix}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:In a key policy, Resource "*" is the key itself, and the account must be able to administer it
  #checkov:skip=CKV_AWS_111:In a key policy, Resource "*" is the key itself; callers are limited to the account and CloudWatch Logs for this cluster's log group
  #checkov:skip=CKV_AWS_356:In a key policy, Resource "*" is the key itself (a key policy cannot name other resources)
  # The account administers the key through IAM (the default key policy).
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts the EKS control plane log group with it.
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/eks/${local.cluster_name}/*"]
    }
  }
}
