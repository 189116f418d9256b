"""vpcep-operator: VPC endpoints (PrivateLink) for multi-tenant Kubernetes clusters."""

# The one place of the version: pyproject.toml reads it, Chart.yaml's version and appVersion repeat it and
# tests/unit/test_versions.py holds them (and CHANGELOG.md) to it.
__version__ = "0.2.0"

GROUP = "vpcep.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
