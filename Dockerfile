# Capstan on the CPU with the local model. Build: docker build -t capstan .
# Run:  docker run -p 8000:8000 -e CAPSTAN_API_TOKEN=change-me capstan
# (listening beyond loopback requires a bearer token).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake git bubblewrap ffmpeg \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/capstan
COPY . .
# Installs .venv, compiles llama-cpp-python, assembles and verifies the model.
RUN PYTHON=python3 scripts/setup.sh

ENV CAPSTAN_DATA_DIR=/data \
    PATH=/opt/capstan/.venv/bin:$PATH
VOLUME ["/data"]
EXPOSE 8000
CMD ["capstan", "serve", "--host", "0.0.0.0", "--port", "8000"]
