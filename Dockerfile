# Multi-stage build of sagascope: compile server + wasm with cargo-leptos,
# then ship the binary and the site in a small non-root image.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm pkg-config zlib1g-dev && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown \
 && cargo install cargo-leptos@0.3.10 --locked --features no_downloads \
 && CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo install wasm-bindgen-cli --version 0.2.130
WORKDIR /src
COPY end2end/package.json end2end/package-lock.json end2end/
RUN cd end2end && npm ci --no-audit --no-fund
COPY . .
RUN PATH="/src/end2end/node_modules/.bin:$PATH" cargo leptos build --release --cargo-locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates zlib1g && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app sagascope
WORKDIR /app
COPY --from=build /src/target/release/sagascope /app/sagascope
COPY --from=build /src/target/site /app/site
COPY rules.example.toml /app/rules.example.toml
USER sagascope
ENV LEPTOS_SITE_ROOT=/app/site SAGASCOPE_LISTEN=0.0.0.0:3000
EXPOSE 3000
ENTRYPOINT ["/app/sagascope"]
CMD ["serve"]
