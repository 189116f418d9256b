"""Thin kopf handlers: observe (indexes), call the domain, apply through vpcep.k8s, patch status."""
