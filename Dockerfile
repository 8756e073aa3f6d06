# gittrigger's image: the server (`gittrigger serve`) and, on Kubernetes, the helper image of every
# workflow pod (`gittrigger pod-init` / `pod-wait`, and the emissary they stage; see
# docs/kubernetes-pods.md). Built from the repository root: `docker build -t gittrigger .`

# 1. The emissary: static, so it runs in any user image (no shell, any libc or none).
FROM debian:12-slim AS emissary
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY images/emissary/emissary.c /src/emissary.c
RUN gcc -static -O2 -Wall -Wextra -Werror -s -o /gittrigger-emissary /src/emissary.c

# 2. gittrigger as a wheel (the final image gets no source tree and no build tools).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY sensors ./sensors
COPY gittrigger ./gittrigger
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# 3. The image: python:3.11-slim with gittrigger installed, the emissary beside it, not root.
FROM python:3.11-slim
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels \
 && useradd --uid 8737 --user-group --home-dir /home/gittrigger --create-home gittrigger \
 && mkdir -p /data \
 && chown gittrigger:gittrigger /data
COPY --from=emissary /gittrigger-emissary /usr/local/bin/gittrigger-emissary
# Listening beyond loopback needs API tokens (auth.tokens_file / GITTRIGGER_ADMIN_TOKEN): serve
# refuses to start without them, on purpose.
ENV GITTRIGGER_DATA_DIR=/data \
    GITTRIGGER_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER 8737:8737
WORKDIR /home/gittrigger
EXPOSE 2746
ENTRYPOINT ["gittrigger"]
CMD ["serve"]
