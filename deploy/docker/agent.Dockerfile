# syntax=docker/dockerfile:1
# pagevault agent (dev image). Build context: the repo root, e.g.
#   docker build -f deploy/docker/agent.Dockerfile -t pagevault-agent .
# or via docker-compose.yml. deploy/docker/agent.Dockerfile.dockerignore keeps
# node_modules/, .stack/ and build outputs out of the context.

FROM node:20-bookworm-slim AS build
# Toolchain for native addons that have no prebuilt binary, and gcc for libs/hashing's batch hashing
# library (npm ci builds it; PV_NATIVE_REQUIRED makes a failed build fail the image).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ gcc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
COPY . .
RUN PV_NATIVE_REQUIRED=1 npm ci --no-audit --no-fund
RUN npx nx run @pagevault/agent:build --output-style=stream

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# Workspace packages resolve each other through node_modules symlinks, so the
# whole built tree is kept.
COPY --from=build /src /app
EXPOSE 7701
CMD ["node", "apps/agent/dist/main.js"]
