# Images for the docker-compose topology (docker-compose.yml; README "docker-compose").
# Built from files tracked in this repository alone (test/lab/compose.test.ts checks every COPY).
#   target array:     arraysim itself (site-a, site-b, witness), as the npm package ships it
#   target initiator: a Debian host with open-iscsi, sg3_utils, multipath-tools and fio

# Build: dist/ from the sources (npm ci runs the `prepare` script, tools/build.mjs).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin/ bin/
COPY tools/build.mjs tools/
COPY protocol/ protocol/
COPY src/ src/
RUN npm ci --no-audit --no-fund --loglevel=error

# The package's files (package.json "files") and its production dependencies only.
FROM node:20-bookworm-slim AS array
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
COPY bin/arraysim.js bin/
COPY examples/ examples/
COPY --from=build /src/dist/ dist/
# The witness's state file lives here (docker-compose.yml mounts a named volume, which takes this owner).
RUN mkdir -p /var/lib/arraysim && chown node:node /var/lib/arraysim
USER node
ENTRYPOINT ["node", "/app/bin/arraysim.js"]
CMD ["--help"]

FROM debian:bookworm-slim AS initiator
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends open-iscsi sg3-utils multipath-tools fio \
 && rm -rf /var/lib/apt/lists/*
COPY docker/initiator.sh /usr/local/bin/arraysim-initiator
ENTRYPOINT ["/usr/local/bin/arraysim-initiator"]
