"""Pure functions: decisions in, manifests out (no API calls; vpcep.k8s applies what these build)."""
