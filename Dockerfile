# The ONE image definition of every Espace workload (gateway, identity, notifications,
# documents, claims, web): a build argument picks the workspace package, so the images cannot
# drift apart. Build from the repository root (the uv workspace), e.g.
#   docker build --build-arg SERVICE=identity --build-arg PORT=8001 -t espace/identity .
# Ports: gateway 8000, identity 8001, notifications 8002, documents 8003, claims 8004, web 8005
# (docker-compose.yml and deploy/k8s use the same; the manifest test checks they agree).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
RUN test -n "$SERVICE" || { echo "--build-arg SERVICE=<gateway|identity|notifications|documents|claims|web> is required" >&2; exit 1; }
RUN pip install --no-cache-dir uv
WORKDIR /src
COPY . .
ENV UV_PROJECT_ENVIRONMENT=/app UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1
# Only this package and what it needs (espace-shared, its libraries), installed non-editable.
RUN uv sync --frozen --no-dev --no-editable --package "espace-${SERVICE}"

FROM ${PYTHON_IMAGE}
ARG SERVICE
ARG PORT
RUN test -n "$PORT" || { echo "--build-arg PORT=<8000..8005> is required" >&2; exit 1; }
# Non-root, and nothing written at run time: the root filesystem can be read-only.
RUN useradd --system --uid 10001 --no-create-home app
COPY --from=build /app /app
ENV PATH=/app/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ESPACE_APP="${SERVICE}.main:app" ESPACE_HTTP_PORT="${PORT}"
USER 10001
EXPOSE ${PORT}
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
  CMD python -c "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ['ESPACE_HTTP_PORT'], timeout=1)"
# --no-proxy-headers: the gateway decides itself how many X-Forwarded-For hops to trust
# (GATEWAY_TRUSTED_PROXY_HOPS), and no service should let a client choose its address.
# --no-access-log: the gateway writes its own access log, without query strings.
# --no-server-header: no version banner. exec: uvicorn is PID 1 and gets SIGTERM.
CMD exec uvicorn "$ESPACE_APP" --host 0.0.0.0 --port "$ESPACE_HTTP_PORT" \
    --no-access-log --no-proxy-headers --no-server-header --timeout-graceful-shutdown 10
