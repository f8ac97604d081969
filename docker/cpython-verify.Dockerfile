# cpython-verify itself, for CI: the tool plus the system programs its stages drive.
#
#   docker build -f docker/cpython-verify.Dockerfile -t cpython-verify .
#   docker run --rm --privileged -v "$PWD/out:/out" cpython-verify env build bookworm-cpython
#
# --privileged is needed only for the stages that build rootfs tarballs (mmdebstrap --mode=root) or
# nest sandboxes (bwrap/podman inside a container); `source`, `compare` and `attest` run unprivileged.
#
# Base image pinned by digest (python:3.11-slim-bookworm; the digest must be re-checked when bumped:
# `docker buildx imagetools inspect python:3.11-slim-bookworm`).
FROM python:3.11-slim-bookworm@sha256:b18992999dbe963a45a8a4da40ac2b1975be1a776d939d098c647482bcad5cba

# The same system packages scripts/bootstrap installs (minus the browser used by one UI test).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gnupg gpgv bubblewrap mmdebstrap podman runc uidmap xz-utils binutils iproute2 ca-certificates \
      diffoscope-minimal \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/cpython-verify
COPY pyproject.toml README.md LICENSE ./
COPY verify ./verify
RUN pip install --no-cache-dir --disable-pip-version-check . \
 && useradd --system --no-create-home verifier

# Recipes, keys and environment locks are package data (verify/data/recipes), installed with the package.
ENV CPYTHON_VERIFY_CACHE=/var/cache/cpython-verify
VOLUME /var/cache/cpython-verify
ENTRYPOINT ["cpython-verify"]
CMD ["--help"]
