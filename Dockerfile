# Capstan on the CPU with the local model. Build: docker build -t capstan .
# Run:  docker run -p 8000:8000 -e CAPSTAN_API_TOKEN=change-me -v capstan-data:/data -v capstan-prefix:/cache/prefix-cache \
#         --security-opt seccomp=unconfined --security-opt apparmor=unconfined capstan
# Listening beyond loopback requires a bearer token (CAPSTAN_API_TOKEN).
# The sandbox's strongest boundary is bubblewrap, which needs unprivileged user namespaces; Docker's
# default seccomp (and AppArmor) profiles refuse them, hence the two --security-opt options (a
# custom seccomp profile that allows unshare/clone with CLONE_NEWUSER works too). Run without them,
# the workers confine themselves with Landlock instead (kernel 5.13+, on by default in most
# distributions) and the start-up log says so; with neither, the service refuses to start.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake git bubblewrap ffmpeg \
 && rm -rf /var/lib/apt/lists/*

# The model lands in $CAPSTAN_CACHE_DIR/models at build time; prompt-prefix states are written
# to $CAPSTAN_CACHE_DIR/prefix-cache at run time (a volume keeps restarts warm).
ENV CAPSTAN_CACHE_DIR=/cache \
    CAPSTAN_DATA_DIR=/data \
    PATH=/opt/capstan/.venv/bin:$PATH

WORKDIR /opt/capstan
COPY . .
# Creates .venv, compiles llama-cpp-python, assembles and verifies the model.
RUN PYTHON=python3 scripts/setup.sh

VOLUME ["/data", "/cache/prefix-cache"]
EXPOSE 8000
CMD ["capstan", "serve", "--host", "0.0.0.0", "--port", "8000"]
