# SPDX-License-Identifier: MIT
# redis:7-bookworm, made locally for tests/compose/run.sh where no registry
# is reachable: Debian 12's redis-server (7.0) on the debian:bookworm image
# the test imports from mmdebstrap.  Like the official image it runs
# redis-server as the redis user with /data as its working directory, and
# leaves protected mode off (the official build disables it), so that the
# other containers of the compose network may connect.
FROM debian:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
