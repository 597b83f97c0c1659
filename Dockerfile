# Multi-stage build of sagascope: compile the server and the wasm front end
# with cargo-leptos, then ship the stripped binary and the site in a small
# non-root image (Debian slim: glibc for librdkafka, zlib, CA certificates).
# Pinned to the toolchain this repository is tested with (rustc 1.95): a
# floating `rust:1` would change the compiler under an unchanged source.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm pkg-config zlib1g-dev && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown \
 && cargo install cargo-leptos@0.3.10 --locked --features no_downloads \
 && CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo install wasm-bindgen-cli --version 0.2.130
WORKDIR /src
# npm packages first (wasm-opt), so source changes do not re-fetch them.
COPY end2end/package.json end2end/package-lock.json end2end/
RUN cd end2end && npm ci --no-audit --no-fund
COPY . .
RUN PATH="/src/end2end/node_modules/.bin:$PATH" cargo leptos build --release --cargo-locked \
 && strip target/release/sagascope

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates zlib1g && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app sagascope
WORKDIR /app
COPY --from=build /src/target/release/sagascope /app/sagascope
COPY --from=build /src/target/site /app/site
COPY rules.example.toml /app/rules.example.toml
USER 10001
ENV LEPTOS_SITE_ROOT=/app/site SAGASCOPE_LISTEN=0.0.0.0:3000 SAGASCOPE_LOG_FORMAT=json
EXPOSE 3000
# /readyz: the store answers and the ingest is running. bash's /dev/tcp,
# because the image carries no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=6 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3000 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
# SIGTERM drains the ingest and commits before exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/sagascope"]
CMD ["serve"]
