# syntax=docker/dockerfile:1
#
# The OIDC Discovery Provider image, laid out like SPIRE's own oidc-discovery-provider image:
# WORKDIR /opt/spire, USER 1000:1000, ENTRYPOINT /opt/spire/bin/oidc-discovery-provider, so Helm
# charts that pass `-config /run/spire/oidc/config/oidc-discovery-provider.conf` (or set
# `command:`) work unchanged. See docs/deployment.md and docs/migrating-from-spire.md.
#
#   docker build -t spire-oidc .
#
# Stage 1 runs packaging/install.sh (the same script a host install uses): it builds the
# project's wheel and a virtualenv in /opt/spire/venv holding the program and only the runtime
# dependencies, pinned with hashes in requirements.lock. Stage 2 copies /opt/spire into a clean
# slim image: no compiler, no pip/setuptools/wheel in the virtualenv, no wheel files, no source.
# tests/integration/test_packaging.py replays this file's build steps in a scratch root.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY src ./src
COPY packaging/install.sh ./packaging/
RUN packaging/install.sh /opt/spire

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="spire-oidc" \
      org.opencontainers.image.description="SPIRE-compatible OIDC Discovery Provider" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/spire/bin:$PATH
COPY --from=build /opt/spire /opt/spire
WORKDIR /opt/spire
USER 1000:1000
# 443 (ACME, serving_cert_file default), 8443 (the Helm chart's addr), 8008 (health_checks).
EXPOSE 443 8443 8008
ENTRYPOINT ["/opt/spire/bin/oidc-discovery-provider"]
