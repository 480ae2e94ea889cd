# syntax=docker/dockerfile:1

# Build stage. CGO stays on because embedded mode loads libchdb.so with
# dlopen. The runtime image below is Debian bookworm, so the builder is the
# bookworm variant too: a cgo binary needs the glibc it was linked against or
# an older one, and the default golang:1.26 image is built on a newer Debian.
FROM golang:1.26-bookworm AS build
WORKDIR /src

# Download modules in their own layer so a source-only change does not
# download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /correlator ./cmd/correlator

# Runtime stage. Server mode talks to ClickHouse over the network and never
# loads libchdb.so, so the library is not in the image. Embedded mode needs
# libchdb.so added to this image, or the binary run outside the image.
FROM debian:bookworm-slim

# ca-certificates for TLS to ClickHouse and collectors; curl for the
# container health check on /readyz.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 correlator \
    && useradd --system --uid 10001 --gid correlator \
        --home-dir /var/lib/correlator --create-home \
        --shell /usr/sbin/nologin correlator

COPY --from=build /correlator /usr/local/bin/correlator

USER correlator:correlator
WORKDIR /var/lib/correlator
EXPOSE 8080

ENTRYPOINT ["/usr/local/bin/correlator"]
CMD ["serve"]
