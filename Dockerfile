# syntax=docker/dockerfile:1.7
# weam training image: CUDA PyTorch + DeepSpeed + the weam package + fast_align/atools.
#
#   docker build -t weam:0.1.0 .
#   docker run --rm --gpus all weam:0.1.0 --help
#
# Two stages. `build` compiles fast_align/atools (static), builds a standalone CPython 3.11 and a
# virtual environment holding every Python dependency; `runtime` copies only those results onto
# the CUDA image, so no compiler, cmake, git or uv reaches the image that runs.
#
# Versions are pinned here and in pyproject.toml. Pin the base images by digest as well when
# publishing (`FROM image:tag@sha256:…`); the tags below name what was chosen.

# uv (pinned) only installs a standalone CPython and the dependencies in the build stage.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---------------------------------------------------------------------------------------------
# Same Ubuntu release as the runtime image below.
FROM ubuntu:24.04 AS build

# Upstream fast_align, last commit on master (2020-01-08, "Enable tab separation between src and
# trg sentences"). Its CMakeLists asks for CMake 2.8, so newer CMake needs the policy floor.
ARG FAST_ALIGN_REPO=https://github.com/clab/fast_align.git
ARG FAST_ALIGN_COMMIT=cab1e9aac8d3bb02ff5ae58218d8d225a039fa11
ARG PYTHON_VERSION=3.11.14
ARG TORCH_VERSION=2.13.0
ARG TORCH_CUDA=cu128
ARG DEEPSPEED_VERSION=0.19.8

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Build tools live in this stage only. Ubuntu's archive keeps one version per release pocket,
# so apt packages follow the pinned base image rather than exact versions (.hadolint.yaml).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates cmake g++ git make \
    && rm -rf /var/lib/apt/lists/*

# fast_align + atools, linked statically so the runtime stage needs no libgomp/libstdc++ match.
WORKDIR /src/fast_align
RUN git init -q . \
    && git remote add origin "${FAST_ALIGN_REPO}" \
    && git fetch -q --depth 1 origin "${FAST_ALIGN_COMMIT}" \
    && git checkout -q FETCH_HEAD \
    && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
        -DCMAKE_EXE_LINKER_FLAGS=-static \
    && cmake --build build -j "$(nproc)" \
    && install -m 0755 build/fast_align build/atools /usr/local/bin/ \
    && printf 'das Haus ||| the house\n' > /tmp/pair.txt \
    && fast_align -i /tmp/pair.txt -d -o -v > /tmp/fwd.txt \
    && fast_align -i /tmp/pair.txt -d -o -v -r > /tmp/rev.txt \
    && atools -i /tmp/fwd.txt -j /tmp/rev.txt -c grow-diag-final-and \
    && rm /tmp/pair.txt /tmp/fwd.txt /tmp/rev.txt

# A standalone CPython (Ubuntu 24.04 ships 3.12; weam pins 3.11) and the venv, both under /opt
# so the runtime stage copies them to the same paths.
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH}
RUN uv python install "${PYTHON_VERSION}" \
    && uv venv --python "${PYTHON_VERSION}" /opt/venv

# torch first, from PyTorch's CUDA index, so weam's `torch==2.13.0` pin is already satisfied
# (a PEP 440 local label such as +cu128 matches a pin without one).
RUN uv pip install --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}" \
        "torch==${TORCH_VERSION}"

# DeepSpeed is an sdist whose setup.py imports torch: build it against the torch above. With
# DS_BUILD_OPS=0 no CUDA/C++ op is compiled; weam's trainer uses the torch-native Adam
# (`torch_adam: true`), so no DeepSpeed op is needed at run time either. The build machine has no
# GPU, so the accelerator is named rather than detected.
ENV DS_BUILD_OPS=0
RUN uv pip install setuptools==84.2.1 \
    && DS_ACCELERATOR=cuda uv pip install --no-build-isolation "deepspeed==${DEEPSPEED_VERSION}"

# The weam package and its pinned dependencies (pyproject.toml).
WORKDIR /src/weam
COPY pyproject.toml README.md ./
COPY weam ./weam
COPY alignment ./alignment
COPY training ./training
COPY eval ./eval
RUN uv pip install . \
    && python -c "import torch, deepspeed, weam.cli, weam.training.config, weam.eval.tasks, weam.alignment.config; print(torch.__version__, deepspeed.__version__)"

# ---------------------------------------------------------------------------------------------
# The CUDA user-space libraries torch needs ship inside its CUDA wheels (nvidia-* packages); the
# runtime image adds the driver hooks (NVIDIA_* variables) and the same CUDA release for any other
# consumer. Keep its major.minor equal to TORCH_CUDA above.
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04 AS runtime

LABEL org.opencontainers.image.title="weam" \
      org.opencontainers.image.description="WEAM intermediate pre-training and XTREME-R zero-shot evaluation" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /opt/python /opt/python
COPY --from=build /opt/venv /opt/venv
COPY --from=build /usr/local/bin/fast_align /usr/local/bin/atools /usr/local/bin/
# The shipped stage configs, e.g. `docker run IMAGE pretrain run --config /opt/weam/configs/pretrain/tiny.yaml`.
COPY configs /opt/weam/configs
# The TrainJob a study's Ray driver fills in for a multi-node pre-training run (weam/training/trainjob.py).
COPY k8s/trainer/trainjob.yaml /opt/weam/k8s/trainer/trainjob.yaml

# A fixed non-root uid so Kubernetes `runAsNonRoot` / `runAsUser: 10001` match the image.
RUN groupadd --gid 10001 weam \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin weam

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FAST_ALIGN_BIN=/usr/local/bin/fast_align \
    ATOOLS_BIN=/usr/local/bin/atools \
    DS_BUILD_OPS=0 \
    HF_HOME=/home/weam/.cache/huggingface \
    TORCH_EXTENSIONS_DIR=/home/weam/.cache/torch_extensions \
    MLFLOW_DISABLE_TELEMETRY=true \
    RAY_USAGE_STATS_ENABLED=0

USER 10001:10001
WORKDIR /home/weam

# No network port: training talks to MLflow and peers as a client (torchrun's 29500 is opened
# by the rank-0 process inside the pod network).
HEALTHCHECK NONE

ENTRYPOINT ["weam"]
CMD ["--help"]
