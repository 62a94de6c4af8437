# Multi-stage build: compile in the Rust image, run on a slim Debian with only the
# runtime libraries. The data directory (SQLite database, generated keys) is a volume.
#
#   docker build -t rinnovo .
#   docker run -p 8080:8080 -v rinnovo-data:/var/lib/rinnovo rinnovo serve --demo
#   docker run -e RINNOVO_DATABASE_URL=postgres://... rinnovo serve

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev libsqlite3-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY seeds seeds
COPY templates templates
COPY benches benches
RUN cargo build --release --locked --bin rinnovo

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 libsqlite3-0 libssl3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/rinnovo rinnovo \
 && mkdir -p /var/lib/rinnovo && chown rinnovo:rinnovo /var/lib/rinnovo
COPY --from=build /src/target/release/rinnovo /usr/local/bin/rinnovo
USER rinnovo
ENV RINNOVO_BIND=0.0.0.0:8080 \
    RINNOVO_DATA_DIR=/var/lib/rinnovo
VOLUME /var/lib/rinnovo
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fs http://127.0.0.1:8080/health/live || exit 1
ENTRYPOINT ["rinnovo"]
CMD ["serve"]
