# SageMaker inference image (bring your own container): TorchServe 0.12 with the bundle's
# Python requirements (the package's serve extra). Models are not baked in: SageMaker unpacks the model's model.tar.gz
# (the .mar archives, handlers inside) into /opt/ml/model, so a new model version needs no new
# image. Build and push (not built on the development machine, which has no Docker):
#   docker build -t review-analysis-sagemaker .
# Local run: docker run -p 8080:8080 -v "$PWD/model_store:/opt/ml/model:ro" review-analysis-sagemaker serve
#
# Bookworm, because Debian 13 no longer packages Java 17, TorchServe's tested Java.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/program
# The package with its serving extra: TorchServe, the handlers' libraries (pyproject.toml).
COPY pyproject.toml /opt/program/src-tree/pyproject.toml
COPY README.md /opt/program/src-tree/README.md
COPY src /opt/program/src-tree/src
COPY handlers /opt/program/src-tree/handlers
# The CPU build of the pinned torch first, so that the serve extra does not pull CUDA wheels.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        "$(grep -o 'torch==[0-9.]*' src-tree/pyproject.toml)" \
    && pip install --no-cache-dir "./src-tree[serve]" \
    && rm -rf src-tree

COPY sagemaker/config.properties /opt/program/config.properties
COPY log4j2.xml /opt/program/log4j2.xml
COPY sagemaker/serve /opt/program/serve

# TorchServe writes its logs and unpacks archives in the working directory and in /tmp.
RUN useradd --create-home model-server && chown model-server /opt/program
USER model-server
ENV PATH="/opt/program:${PATH}" \
    TS_CONFIG_FILE=/opt/program/config.properties \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

EXPOSE 8080
ENTRYPOINT ["/opt/program/serve"]
