# grender: a drop-in replacement for Grafana's image renderer.
# Build: docker build -t grender .    Run: docker run -p 8081:8081 -e AUTH_TOKEN=secret grender

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p grender && strip target/release/grender

FROM debian:bookworm-slim
# chromium-headless-shell renders like Chromium with half the memory; the full browser is
# the fallback. CJK and emoji fonts so every panel title draws; tini reaps and forwards
# signals; certificates and certutil for custom CAs; a UTF-8 locale for non-ASCII names.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      chromium-headless-shell chromium fonts-noto-cjk fonts-noto-color-emoji fonts-liberation fonts-dejavu-core \
      tini ca-certificates libnss3-tools openssl locales fontconfig \
 && sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && locale-gen \
 && rm -rf /var/lib/apt/lists/*
ENV LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8
# A numeric non-root user (Kubernetes runAsNonRoot), with a group-0 writable home for
# OpenShift's arbitrary UIDs. As non-root, Chromium keeps its sandbox where the runtime
# allows user namespaces; under Docker's default seccomp profile it cannot start, and
# browser.sandbox=auto (the default) renders without it and logs a warning.
RUN groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home nonroot \
 && chgrp 0 /home/nonroot && chmod g+rwX /home/nonroot
COPY --from=build /src/target/release/grender /usr/local/bin/grender
USER 65532
WORKDIR /home/nonroot
ENV HOME=/home/nonroot SERVER_ADDR=:8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["grender", "healthcheck"]
ENTRYPOINT ["tini", "--", "grender"]
CMD ["server"]
