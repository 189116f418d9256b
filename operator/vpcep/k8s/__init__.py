"""The one thin gateway to the Kubernetes API: resource table, client (apply/patch/delete/retries), Events."""
