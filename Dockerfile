# syntax=docker/dockerfile:1.7
# One image for the operator and the gateways: `operator ...` runs vpcep-operator, `gateway ...` runs
# vpcep-gateway (which drives HAProxy >= 3.0 from Debian trixie). Runs as uid 10001 with a read-only root
# filesystem in the chart; writable paths are emptyDirs (/tmp, /run/vpcep).
FROM debian:trixie-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python3 -m venv /opt/vpcep \
 && /opt/vpcep/bin/pip install --no-cache-dir . \
 && /opt/vpcep/bin/python -c "import vpcep.main, vpcep.gateway.agent, vpcep.cli.kubectl_plugin"

FROM debian:trixie-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 haproxy tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && haproxy -v | grep -Eq 'version (3|[4-9])\.' \
 && groupadd --system --gid 10001 vpcep \
 && useradd --system --uid 10001 --gid vpcep --home-dir /nonexistent --shell /usr/sbin/nologin vpcep
COPY --from=build /opt/vpcep /opt/vpcep
COPY --chmod=0755 <<'EOF_ENTRYPOINT' /usr/local/bin/vpcep-entrypoint
#!/bin/sh
# operator|gateway|kubectl-vpcep [args...]; anything else is run as given (for debugging).
set -e
role="${1:-operator}"
[ $# -gt 0 ] && shift
case "$role" in
  operator) exec vpcep-operator "$@" ;;
  gateway) exec vpcep-gateway "$@" ;;
  kubectl-vpcep|cli) exec kubectl-vpcep "$@" ;;
  *) exec "$role" "$@" ;;
esac
EOF_ENTRYPOINT
ENV PATH=/opt/vpcep/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# tini reaps HAProxy's exited workers and forwards SIGTERM for a graceful stop.
ENTRYPOINT ["/usr/bin/tini", "--", "vpcep-entrypoint"]
CMD ["operator"]
