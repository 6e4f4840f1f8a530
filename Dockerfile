# syntax=docker/dockerfile:1
#
# ngshare_s3's container image: the service alone, run as the unprivileged user 10001, listening
# on 0.0.0.0:8080. The Helm chart in k8s/ runs it; `docker build -t ngshare-s3 .` builds it.
#
# Both stages start from the same base, which a build argument can swap
# (e.g. --build-arg PYTHON_IMAGE=python:3.12.12-slim-bookworm): the wheels built in the first
# stage are for its Python. The pip commands live in docker/*.sh, which CI also runs outside
# Docker (tests/deploy/test_image.py).
ARG PYTHON_IMAGE=python:3.13.9-slim-trixie

# --- builder: our wheel, built from source, and binary wheels of every dependency -------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# .dockerignore lets only the package, its metadata and docker/ into the build context.
COPY . .
RUN sh docker/build-wheels.sh /wheels /src

# --- final: a virtualenv installed from those wheels only; no compiler, no wheels, no cache ---
FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ngshare_s3" \
      org.opencontainers.image.description="nbgrader exchange service for JupyterHub, API-compatible with ngshare 0.6, storing files in S3 and metadata in MongoDB or SQLite" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheels and the install script are mounted for this one step, so no layer keeps them.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=docker/install-wheels.sh,target=/usr/local/lib/install-wheels.sh \
    sh /usr/local/lib/install-wheels.sh /wheels /opt/ngshare_s3

# A numeric user and group, so that Kubernetes' runAsNonRoot can verify them; the embedded
# backends' default database and folder live under /srv/ngshare (a volume in the chart).
RUN groupadd --system --gid 10001 ngshare \
    && useradd --system --uid 10001 --gid 10001 --home-dir /srv/ngshare --no-create-home \
       --shell /usr/sbin/nologin ngshare \
    && mkdir -p /srv/ngshare \
    && chown 10001:10001 /srv/ngshare

ENV PATH=/opt/ngshare_s3/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/tmp \
    NGSHARE_S3_HOST=0.0.0.0 \
    NGSHARE_S3_PORT=8080
WORKDIR /srv/ngshare
USER 10001:10001
EXPOSE 8080

# Liveness only: /livez never touches MongoDB or S3. The slim base has no curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('NGSHARE_S3_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["ngshare-s3"]
