# syntax=docker/dockerfile:1
# Portcullis container image. Three stages: `build` compiles TypeScript with the dev toolchain, `deps` installs the
# production dependencies alone, and the runtime stage gets only those two results, so neither the compiler nor the
# sources nor npm itself ship. Base images are tags; pin them by digest (node:24-bookworm-slim@sha256:...) in release
# builds so a rebuild cannot silently change the base.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gateway ./gateway
COPY policies ./policies
COPY certs ./certs
RUN npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# No production dependency has an install script (only dev ones do), so none may run here.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# Nothing installs packages at run time; removing the package managers removes their CVEs from the image.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
  && groupadd --system --gid 10001 portcullis \
  && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin portcullis \
  && mkdir -p /var/run/portcullis /etc/portcullis \
  && chown 10001:10001 /var/run/portcullis
WORKDIR /app
# Code stays owned by root and read-only to the gateway user: a compromised process cannot rewrite itself.
# package.json is needed at run time: its "type": "module" makes dist/*.js load as ES modules.
COPY package.json ./
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
# The only writable path. With `docker run --read-only` this volume (or a --tmpfs) keeps the root filesystem
# read-only; in Kubernetes the chart mounts an emptyDir here.
VOLUME ["/var/run/portcullis"]
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# 8443: the TLS edge listener; 9901: the admin plane (health, readiness, metrics).
EXPOSE 8443 9901
# The admin plane's liveness endpoint, fetched by node itself: the slim image has no curl or wget. A config with
# admin.tls serves it over HTTPS; run such containers with --no-healthcheck (Kubernetes ignores HEALTHCHECK).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz',{signal:AbortSignal.timeout(4000)}).then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM drains in-flight requests and exits 0; SIGHUP reloads the config.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/gateway/cli.js"]
# --state-dir moves generated material off the read-only root filesystem (the default is ./.portcullis under /app).
CMD ["run", "-c", "/etc/portcullis/portcullis.yaml", "--state-dir", "/var/run/portcullis"]
