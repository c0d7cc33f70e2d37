# syntax=docker/dockerfile:1
# revwallet's container image: a static (musl) release build of the one binary on an empty `scratch` runtime,
# running as uid 10001.
# Stages: chef (toolchain, cargo-chef, cargo-auditable) -> planner (dependency recipe) -> builder (dependencies,
# then the app) -> runtime. The dependency layer only rebuilds when Cargo.toml/Cargo.lock change, not on every source edit.
# Migrations, templates and static files are compiled into the binary, and rustls carries its own root
# certificates (webpki-roots), so the runtime stage copies nothing else.
# Base images are official images named without a registry host, pinned by version tag;
# .github/workflows pins the built image by digest when it is released.

# Same toolchain as CI and the development machine (RUST_TOOLCHAIN in .github/workflows/ci.yml), on Alpine:
# its host target is *-unknown-linux-musl, whose binaries are statically linked by default (no --target, no
# RUSTFLAGS; forcing +crt-static would break proc-macro crates). musl-dev: the C compiled by the build (the
# SQLite bundled by libsqlite3-sys, ring) needs musl's headers and static libc. Fuzzy-pinned to musl 1.2.5,
# Alpine 3.22's, so that a rebuilt package revision (-rN) still installs.
# cargo-auditable embeds the dependency list (crate names and versions from Cargo.lock) in the binary, in a
# `.dep-v0` section: the runtime image holds no package database, so this is what Trivy, Grype and the SBOM
# read to know which crates shipped (ADR 0044).
FROM rust:1.95.0-alpine3.22 AS chef
RUN apk add --no-cache musl-dev=~1.2.5 \
    && cargo install cargo-chef --locked --version 0.1.77 \
    && cargo install cargo-auditable --locked --version 0.7.7
WORKDIR /build
# sqlx must never need a live database to compile (offline metadata, if any, is in .sqlx/).
ENV SQLX_OFFLINE=true

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
# Dependencies only: cached until the recipe (Cargo.toml, Cargo.lock) changes. The registry cache mount keeps
# downloaded crates between builds without putting them in a layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
# The runtime stage is empty, so the binary must need no shared library at all: the build fails here if
# readelf finds any NEEDED entry (readelf comes with gcc's binutils in the rust image). It also fails if the
# audit data is missing, since without it the image's vulnerability scan has nothing to scan.
# /out/data: an empty directory owned by the runtime user, its working directory (where the SQLite default
# revwallet.db would go if the image is run without DATABASE_URL; Compose and Kubernetes use PostgreSQL).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo auditable build --release --locked --bin revwallet \
    && readelf --dynamic target/release/revwallet >/tmp/revwallet.dynamic \
    && if grep -q NEEDED /tmp/revwallet.dynamic; then \
         echo "revwallet is dynamically linked; the scratch runtime has no libc:" >&2; cat /tmp/revwallet.dynamic >&2; exit 1; \
       fi \
    && readelf --section-headers target/release/revwallet >/tmp/revwallet.sections \
    && { grep -q '\.dep-v0' /tmp/revwallet.sections \
         || { echo "revwallet carries no cargo-auditable data (.dep-v0); scanners would see no crates" >&2; exit 1; }; } \
    && install -D -m 0755 target/release/revwallet /out/revwallet \
    && install -d -m 0750 -o 10001 -g 10001 /out/data \
    && install -d -m 1777 /out/tmp

# scratch: the empty image. No shell, no package manager, no libc, nothing to exec into or patch; the image
# is the static binary plus its working directory. HEALTHCHECK, ENTRYPOINT and CMD use the exec form, so
# nothing needs a shell. There is no /etc/passwd either: the user is given by number.
FROM scratch AS runtime
COPY --from=builder /out/revwallet /usr/local/bin/revwallet
COPY --from=builder --chown=10001:10001 /out/data /data
# /tmp exists (sticky, world-writable) so a read-only root can mount a scratch volume there (ECS Fargate's
# task volume, Kubernetes' emptyDir) and anything that asks for a temporary directory finds one.
COPY --from=builder /out/tmp /tmp
WORKDIR /data
# A fixed non-root uid/gid so volumes and Kubernetes securityContext can name it.
USER 10001:10001
# Containers listen on every interface and log JSON lines on stdout (Alloy ships them to Loki).
ENV REVWALLET_LISTEN=0.0.0.0:8080 \
    REVWALLET_LOG_FORMAT=json
EXPOSE 8080
# The binary checks itself (GET /healthz): the image has no curl or shell to do it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/revwallet", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/revwallet"]
CMD ["serve"]
