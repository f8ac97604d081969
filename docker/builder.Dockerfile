# The builder image: exactly the rootfs tarball `cpython-verify env build bookworm-cpython` produced
# (the same bytes bwrap and podman run), for users with a Docker engine.
#
#   tarball=$(cpython-verify env build bookworm-cpython | head -1)
#   mkdir -p /tmp/ctx && ln -f "$tarball" /tmp/ctx/rootfs.tar
#   docker build -f docker/builder.Dockerfile -t cpython-verify-env/bookworm-cpython:$(basename "$tarball" .tar) /tmp/ctx
#
# `cpython-verify env run --runner docker` does the equivalent with `docker import`, tagging the image
# with the tarball's sha256. A dedicated context directory keeps the build context to the one tarball.
FROM scratch
# ADD unpacks a local tar archive into /: owners, modes and mtimes come from the tarball.
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 TZ=UTC
WORKDIR /build
CMD ["/bin/bash"]
