# The tasveer API and training worker (one image, two commands; see docker-compose.yml).
#   docker build -t tasveer .                                   CPU (PyTorch CPU wheels)
#   docker build -t tasveer-gpu --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
# TORCH_INDEX picks the PyTorch wheel index: the CUDA build for a GPU worker (run it with the
# NVIDIA container toolkit: `gpus: all` in docker-compose.gpu.yml). The API never imports torch
# (REDIS_URL set: trainings run on the workers; predictions with ONNX Runtime).
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 tasveer
WORKDIR /app
COPY pyproject.toml README.md ./
COPY training training
COPY lsproto lsproto
COPY lsclient lsclient
COPY backend backend
COPY sync sync
COPY cli cli
COPY config config
RUN pip install --extra-index-url "$TORCH_INDEX" ".[onnx,cluster]" \
 && mkdir -p /data && chown tasveer:tasveer /data

USER tasveer
ENV TASVEER_DATA_DIR=/data TASVEER_HOST=0.0.0.0 TASVEER_PORT=9090
# listening beyond loopback needs a login (TASVEER_SECRET, docs/security.md): the health check below
# asks without one, so /health (and `/`, which say "UP" and nothing else) answer without a login, as
# docker-compose.yml sets it too
ENV TASVEER_OPEN_HEALTH=1
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9090/health', timeout=4)" || exit 1
CMD ["python", "-m", "backend"]
