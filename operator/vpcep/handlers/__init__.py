"""The kopf side of the operator: start-up and clean-up, login, readiness, the admission webhook, metrics."""
