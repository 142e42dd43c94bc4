# syntax=docker/dockerfile:1
# The operator's image for people who build with Docker/BuildKit. `make image`
# (image/build.sh) builds the same image without any container engine; both
# lay out the root filesystem with image/rootfs.sh, so they hold the same
# files: the binary (a static PIE by default), exactly the shared libraries it
# loads (none then), a nonroot user.
#
#   docker build -t inference-operator:0.1.0 .
#
# Build: Debian 12, the README's packages. Runtime: scratch + those files
# (distroless-style: no shell, no package manager, no CA bundle; the operator
# trusts the in-cluster CA of its service-account directory).

FROM debian:12 AS build
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential pkg-config git ca-certificates binutils \
      dpkg-dev libnghttp2-dev zlib1g-dev nettle-dev libgmp-dev libtasn1-6-dev \
      autoconf automake libtool autopoint gettext \
      libmicrohttpd-dev libgnutls28-dev libcurl4-gnutls-dev libcjson-dev libyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make BUILD=/tmp/build /tmp/build/inference-operator \
 && SOURCE_DATE_EPOCH=0 image/rootfs.sh /tmp/build/inference-operator /rootfs

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/usr/local/bin/inference-operator"]
CMD ["serve"]
LABEL org.opencontainers.image.title="inference-operator"
