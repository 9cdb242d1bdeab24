# SPDX-License-Identifier: MIT
# enrichfarm image: the three programs (enqueuer, worker, statusd) and the
# mock provider, on Debian bookworm.  Stage one builds with the -dev
# packages; stage two keeps only the runtime libraries (BuildKit, the
# default builder of Docker 23 and later, runs both stages' package
# installs at the same time).  Used by
# docker-compose.yml; checked by tests/integration/test_compose.sh.
#   docker build -t enrichfarm .

FROM debian:bookworm AS build
# the C compiler and headers, GNU Make and pkg-config: all the build needs
# (build-essential would bring g++, dpkg-dev and perl to download as well)
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc libc6-dev pkg-config make \
      libhiredis-dev libuv1-dev libcurl4-openssl-dev libcjson-dev libssl-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# -j: every core, or --build-arg MAKE_JOBS=N
ARG MAKE_JOBS
RUN make -j"${MAKE_JOBS:-$(nproc)}" all \
 && make install PREFIX=/usr/local DESTDIR=/out \
 && install -m 0755 bin/mockprov /out/usr/local/bin/mockprov \
 && mkdir -p /out/usr/local/share/enrichfarm/samples \
 && install -m 0644 samples/movies.csv samples/ids.txt /out/usr/local/share/enrichfarm/samples/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libhiredis0.14 libuv1 libcurl4 libcjson1 libssl3 libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin enrichfarm
COPY --from=build /out/usr/local/ /usr/local/
USER enrichfarm
ENV FARM_PROVIDERS=/usr/local/share/enrichfarm/examples/demo.json
# The programs are on PATH: docker run IMAGE worker --help
CMD ["worker", "--help"]
