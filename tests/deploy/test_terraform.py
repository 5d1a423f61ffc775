"""deploy/terraform (AWS), checked statically: there is no terraform binary here.

checkov passes (skips only through `#checkov:skip=ID:reason` comments, each with a reason); the files parse as
HCL (with checkov's own parser, `hcl2` from bc-python-hcl2, run by the tools venv's python); every reference
names something declared; and the resources the stack promises exist with the settings that matter: a
versioned, KMS-encrypted, private S3 bucket, encrypted private PostgreSQL for MLflow, an EKS cluster with a
node group, and an IRSA role for the chart's service account.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from .conftest import REPO

TERRAFORM = REPO / "deploy" / "terraform"
CHART = REPO / "deploy" / "helm" / "mloop"
CONVENTIONAL_FILES = {"versions.tf", "variables.tf", "main.tf", "outputs.tf", "README.md"}

# Prints {file name: parsed HCL} as JSON; bc-python-hcl2 wraps every attribute value in a list.
PARSE = """
import json, sys
from pathlib import Path
import hcl2
print(json.dumps({p.name: hcl2.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*.tf"))}))
"""

Block = dict[str, Any]


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)


@pytest.fixture(scope="module")
def hcl(tools_python: str) -> dict[str, Block]:
    result = run([tools_python, "-c", PARSE, str(TERRAFORM)])
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Block] = json.loads(result.stdout)
    return parsed


def declared(hcl: dict[str, Block], kind: str) -> dict[str, Block]:
    """`kind` blocks of every file: resources and data as {"type.name": body}, variables and outputs by name."""
    found: dict[str, Block] = {}
    for parsed in hcl.values():
        for entry in parsed.get(kind, []):
            for key, body in entry.items():
                if kind in ("resource", "data"):
                    for name, inner in body.items():
                        found[f"{key}.{name}"] = inner
                else:
                    found[key] = body
    return found


def attr(block: Block, key: str) -> Any:
    return block[key][0]


def test_checkov_passes(tool: Callable[[str], str], tools_env: dict[str, str]) -> None:
    checkov = tool("checkov")
    result = run(
        [checkov, "-d", str(TERRAFORM), "--framework", "terraform", "--skip-download", "-o", "json"],
        env=tools_env,
    )
    report = json.loads(result.stdout)
    failed = report["results"]["failed_checks"]
    assert not failed, "\n".join(f"{c['check_id']} {c['check_name']}: {c['resource']}" for c in failed)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 150, summary
    assert result.returncode == 0, result.stderr
    # every skip is explicit and explained
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "")) > 20, skipped


def test_conventional_layout(hcl: dict[str, Block]) -> None:
    assert CONVENTIONAL_FILES <= {p.name for p in TERRAFORM.iterdir()}
    (terraform,) = hcl["versions.tf"]["terraform"]
    providers = terraform["required_providers"][0]
    assert attr(providers, "aws")["source"] == "hashicorp/aws"
    assert all(name in ("variables.tf",) for name, parsed in hcl.items() if "variable" in parsed)
    assert all(name in ("outputs.tf",) for name, parsed in hcl.items() if "output" in parsed)
    for name, body in declared(hcl, "variable").items():
        assert attr(body, "description") and "type" in body, f"variable {name} needs a description and a type"
    for name, body in declared(hcl, "output").items():
        assert attr(body, "description"), f"output {name} needs a description"


def test_every_reference_is_declared(hcl: dict[str, Block]) -> None:
    """What `terraform validate` would catch first: references to undeclared resources, data, variables, locals."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(TERRAFORM.glob("*.tf")))
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", "//")))
    resources, data = declared(hcl, "resource"), declared(hcl, "data")
    variables = declared(hcl, "variable")
    locals_ = {key for parsed in hcl.values() for entry in parsed.get("locals", []) for key in entry}
    for kind, name in re.findall(r"(?<![.\w])data\.(\w+)\.(\w+)", code):
        assert f"{kind}.{name}" in data, f"data.{kind}.{name} is not declared"
    for kind, name in re.findall(r"(?<![.\w\"/:])((?:aws|tls)_\w+)\.(\w+)", code):
        assert f"{kind}.{name}" in resources, f"{kind}.{name} is not declared"
    used_vars = set(re.findall(r"\bvar\.(\w+)", code))
    assert used_vars <= set(variables), used_vars - set(variables)
    assert set(variables) <= used_vars, f"unused variables: {set(variables) - used_vars}"
    assert set(re.findall(r"\blocal\.(\w+)", code)) <= locals_


def test_artifact_bucket_is_versioned_encrypted_and_private(hcl: dict[str, Block]) -> None:
    resources = declared(hcl, "resource")
    assert "aws_s3_bucket.artifacts" in resources
    versioning = resources["aws_s3_bucket_versioning.artifacts"]
    assert attr(versioning, "bucket") == "${aws_s3_bucket.artifacts.id}"
    assert attr(attr(versioning, "versioning_configuration"), "status") == "Enabled"
    sse = attr(
        attr(resources["aws_s3_bucket_server_side_encryption_configuration.artifacts"], "rule"),
        "apply_server_side_encryption_by_default",
    )
    assert attr(sse, "sse_algorithm") == "aws:kms" and attr(sse, "kms_master_key_id") == "${aws_kms_key.main.arn}"
    block = resources["aws_s3_bucket_public_access_block.artifacts"]
    for key in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert attr(block, key) is True, key
    assert attr(resources["aws_kms_key.main"], "enable_key_rotation") is True


def test_postgres_for_mlflow(hcl: dict[str, Block]) -> None:
    db = declared(hcl, "resource")["aws_db_instance.mlflow"]
    assert attr(db, "engine") == "postgres"
    assert attr(db, "storage_encrypted") is True and attr(db, "publicly_accessible") is False
    assert attr(db, "manage_master_user_password") is True and "password" not in db
    assert attr(db, "db_name") == "${var.db_name}"
    rule = declared(hcl, "resource")["aws_vpc_security_group_ingress_rule.mlflow_db_from_cluster"]
    assert attr(rule, "from_port") == 5432 and "cluster_security_group_id" in attr(rule, "referenced_security_group_id")


def test_eks_cluster_with_a_node_group(hcl: dict[str, Block]) -> None:
    resources = declared(hcl, "resource")
    cluster = resources["aws_eks_cluster.main"]
    assert attr(cluster, "version") == "${var.cluster_version}"
    assert attr(attr(cluster, "vpc_config"), "endpoint_private_access") is True
    nodes = resources["aws_eks_node_group.main"]
    assert attr(nodes, "cluster_name") == "${aws_eks_cluster.main.name}"
    assert set(attr(nodes, "scaling_config")) >= {"min_size", "desired_size", "max_size"}
    assert attr(attr(resources["aws_launch_template.node"], "metadata_options"), "http_tokens") == "required"


def test_irsa_role_for_the_charts_service_account(hcl: dict[str, Block], helm_fullname: str) -> None:
    resources, data = declared(hcl, "resource"), declared(hcl, "data")
    assert "aws_iam_openid_connect_provider.cluster" in resources
    assert (
        attr(resources["aws_iam_role.mloop"], "assume_role_policy")
        == "${data.aws_iam_policy_document.irsa_assume.json}"
    )
    (statement,) = data["aws_iam_policy_document.irsa_assume"]["statement"]
    assert attr(statement, "actions") == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {attr(c, "variable").rsplit(":", 1)[1]: attr(c, "values") for c in statement["condition"]}
    assert conditions == {
        "sub": ["system:serviceaccount:${var.k8s_namespace}:${var.k8s_service_account}"],
        "aud": ["sts.amazonaws.com"],
    }
    # the defaults name the service account that `helm install mloop deploy/helm/mloop -n mloop` creates
    variables = declared(hcl, "variable")
    assert attr(variables["k8s_service_account"], "default") == helm_fullname
    assert attr(variables["k8s_namespace"], "default") == "mloop"
    # the pods may use the artifact bucket and nothing else
    policy = data["aws_iam_policy_document.mloop"]
    targets = {r for s in policy["statement"] for r in attr(s, "resources")}
    assert targets == {"${aws_s3_bucket.artifacts.arn}", "${aws_s3_bucket.artifacts.arn}/*", "${aws_kms_key.main.arn}"}
    assert "irsa_role_arn" in declared(hcl, "output")


def test_cluster_version_is_one_the_chart_supports(hcl: dict[str, Block]) -> None:
    version = attr(declared(hcl, "variable")["cluster_version"], "default")
    claim = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))["kubeVersion"]
    minimum = re.search(r"(\d+)\.(\d+)", claim)
    assert minimum is not None
    major, minor = (int(p) for p in version.split("."))
    assert (major, minor) >= (int(minimum.group(1)), int(minimum.group(2))), (version, claim)


@pytest.fixture(scope="module")
def helm_fullname(tool: Callable[[str], str]) -> str:
    """The ServiceAccount name of a release called mloop."""
    result = run([tool("helm"), "template", "mloop", str(CHART), "-n", "mloop", "-s", "templates/serviceaccount.yaml"])
    assert result.returncode == 0, result.stderr
    name: str = yaml.safe_load(result.stdout)["metadata"]["name"]
    return name


def test_readme_lists_every_variable_and_output(hcl: dict[str, Block]) -> None:
    readme = (TERRAFORM / "README.md").read_text(encoding="utf-8")
    for name in [*declared(hcl, "variable"), *declared(hcl, "output")]:
        assert f"`{name}`" in readme, f"{name} is not in deploy/terraform/README.md"


def test_example_tfvars_sets_only_declared_variables(hcl: dict[str, Block]) -> None:
    example = TERRAFORM / "terraform.tfvars.example"
    names = set(re.findall(r"^(\w+)\s*=", example.read_text(encoding="utf-8"), flags=re.MULTILINE))
    variables = declared(hcl, "variable")
    assert names <= set(variables)
    required = {name for name, body in variables.items() if "default" not in body}
    assert required <= names, f"the example misses required variables {required - names}"
