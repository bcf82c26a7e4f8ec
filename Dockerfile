# grender: a drop-in replacement for Grafana's image renderer.
# Build: docker build -t grender .    Run: docker run -p 8081:8081 -e AUTH_TOKEN=secret grender
# scripts/image-test builds this file as it is and checks the image from the inside.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts (BuildKit, the default since Docker 23; podman/buildah) keep the downloaded
# crates and the compiled dependencies between builds, so a change to grender's sources
# recompiles grender only (47 s instead of ~20 min on 2 cores).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p grender \
 && strip -o /grender target/release/grender

FROM debian:bookworm-slim
# The headless shell is the only browser: grender looks for it first, and it renders like
# Chromium with half the memory (the full chromium package would add ~300 MB never used).
# Left out as well: the CJK serif faces (fontconfig falls back to the sans ones, which draw
# every CJK glyph) and Vulkan's validation layer (debugging only; grender runs without GPU).
# CJK and emoji fonts so every panel title draws; tini reaps and forwards signals;
# certificates and certutil for custom CAs; fontconfig for `grender doctor`'s font check;
# a UTF-8 locale for non-ASCII names.
RUN printf '%s\n' 'path-exclude /usr/share/fonts/opentype/noto/NotoSerifCJK*' \
      'path-exclude /usr/lib/chromium/libVkLayer_khronos_validation.so' >/etc/dpkg/dpkg.cfg.d/grender \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      chromium-headless-shell fonts-noto-cjk fonts-noto-color-emoji fonts-liberation fonts-dejavu-core \
      tini ca-certificates libnss3-tools locales fontconfig \
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
COPY --from=build /grender /usr/local/bin/grender
USER 65532
WORKDIR /home/nonroot
# No SERVER_ADDR here: grender listens on :8081 by default, and a SERVER_ADDR in the image
# would hide the Node service's HTTP_HOST / HTTP_PORT that Grafana's Helm chart sets.
ENV HOME=/home/nonroot
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["grender", "healthcheck"]
ENTRYPOINT ["tini", "--", "grender"]
CMD ["server"]
