"""vpcep-operator: VPC endpoints (PrivateLink) for multi-tenant Kubernetes clusters."""

GROUP = "vpcep.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
