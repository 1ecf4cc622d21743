# syntax=docker/dockerfile:1
# The heartwire image: the agent built in the Rust image, run from a distroless one.
#
#   docker build -t heartwire/heartwire:0.1.0 .
#   docker run --rm -p 8127:8127 heartwire/heartwire:0.1.0
#
# The binary links glibc dynamically (no musl target), so the build runs on Debian 12 (bookworm),
# the same glibc as the distroless cc-debian12 runtime: a newer builder could require glibc
# symbols the runtime lacks.

FROM rust:1.95.0-bookworm AS build
# rust-toolchain.toml's channel, already installed in this image. Naming it here keeps rustup
# from downloading the file's extra components (rustfmt, clippy), which a build does not need.
ENV RUSTUP_TOOLCHAIN=1.95.0
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p heartwire --bin heartwire \
    && install -D -m 0755 target/release/heartwire /out/heartwire

# glibc, libgcc_s and CA certificates; no shell, no package manager. `nonroot` is uid/gid 65532,
# the user the Helm chart runs the sidecar as.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/heartwire /usr/local/bin/heartwire
USER 65532:65532
# GET /metrics and /healthz. Ingest (UDP/TCP 8125, POST /ingest on 8128) stays on loopback: only
# the containers of the same pod may write.
EXPOSE 8127
ENTRYPOINT ["heartwire"]
CMD ["serve"]
