# cpython-verify itself, running on a CPython it rebuilt and verified, on the pinned rootfs it was
# rebuilt in. Nothing comes from an image registry: the base is `scratch`.
#
# The build context is prepared by scripts/build-tool-image RESULT_DIR, which first checks the
# result's attestation (`cpython-verify verify-attestation --result`); do not assemble it by hand:
#   rootfs.tar   the bookworm-cpython tarball (`cpython-verify env build bookworm-cpython`), sha256-checked
#   python/      the verified install tree (RESULT_DIR/root/opt/python) plus .cpython-verify/: the
#                attestation, rebuild.json, manifest.json, source-verdict.json and the signer's public key
#   debs/        gpg and the two libraries the rootfs lacks (docker/gnupg.lock, sha256-checked)
#   wheels/      the wheels of docker/requirements.lock and docker/pip.lock, cpython-verify's own wheel,
#                and requirements.lock (the docker lock plus that wheel's hash)
#
#   scripts/build-tool-image rebuild-3.13.5-default --public-key rebuilder.pem.pub                # podman
#   scripts/build-tool-image rebuild-3.13.5-default --public-key rebuilder.pem.pub --engine docker
#   podman run --rm -v ~/distfiles:/src:ro cpython-verify source 3.13.5 --from /src --offline
#
# The debs and wheels are bind-mounted for the one RUN that installs them (RUN --mount, BuildKit and
# buildah both), so they never become a layer. pip runs from its hash-checked wheel and is not
# installed; every other wheel is installed with --require-hashes --no-deps.
FROM scratch
ADD rootfs.tar /
COPY python/ /opt/python/

ARG SOURCE_DATE_EPOCH=0
ARG PIP_WHEEL
ARG PIP_SHA256
ARG PYTHON=/opt/python/bin/python3.13
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LC_ALL=C.UTF-8 TZ=UTC \
    CPYTHON_VERIFY_CACHE=/var/cache/cpython-verify

# dpkg's log and backup files and ldconfig's aux-cache record when and on which inodes the build ran:
# removed so that two builds give the same layer. SOURCE_DATE_EPOCH makes pip compile checked-hash
# .pyc files (PEP 552), which carry no mtime.
RUN --mount=type=bind,source=debs,target=/tmp/debs \
    --mount=type=bind,source=wheels,target=/tmp/wheels \
    dpkg -i /tmp/debs/*.deb > /dev/null \
 && rm -f /var/log/dpkg.log /var/lib/dpkg/*-old /var/cache/debconf/*-old /var/cache/ldconfig/aux-cache \
 && echo "${PIP_SHA256}  /tmp/wheels/${PIP_WHEEL}" | sha256sum --check --quiet - \
 && SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH}" "${PYTHON}" "/tmp/wheels/${PIP_WHEEL}/pip" install \
      --no-index --find-links /tmp/wheels --require-hashes --no-deps --no-cache-dir \
      --disable-pip-version-check --root-user-action=ignore --quiet -r /tmp/wheels/requirements.lock \
 && mkdir -p /var/cache/cpython-verify /work

WORKDIR /work
ENTRYPOINT ["/opt/python/bin/cpython-verify"]
CMD ["--help"]
