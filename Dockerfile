# Cortex Hub image: `daphne` serves HTTP/WebSocket (and the static files); run
# `python manage.py runmesh` for nodes. docker-compose.yml wires both to PostgreSQL and Redis.

# Stage 1: the console's browser libraries, installed with Debian's Node (20 in Debian 13, as marked
# needs) from the lock file.
# Only the files the pages load (scripts/vendor_static.py) reach the image; node_modules does not.
FROM debian:trixie-slim AS assets
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY console/package.json console/package-lock.json console/
COPY scripts/vendor_static.py scripts/
RUN cd console && npm ci --no-audit --no-fund \
 && cd .. && python3 scripts/vendor_static.py

# Stage 2: the hub.
FROM python:3.11-slim

# Static files live outside /app/var, so a volume mounted there never hides them.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 CORTEX_DEBUG=0 CORTEX_LOG_JSON=1 \
    CORTEX_STATIC_ROOT=/app/staticfiles

RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 cortex

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=cortex:cortex . .
COPY --from=assets /src/console/static/vendor console/static/vendor
# Hashed, gzip- and Brotli-compressed copies of every static file (admin, API docs, console),
# owned by root: the hub only reads them. The keys exist for this one command and are not kept.
RUN CORTEX_SECRET_KEY=collectstatic-only CORTEX_FIELD_KEYS=collectstatic-only \
    python manage.py collectstatic --noinput -v 0 \
 && mkdir -p -m 700 /app/var/media && chmod 700 /app/var && chown -R cortex:cortex /app/var

USER cortex
EXPOSE 8000 50051
# Web process; the mesh process uses the same image with: python manage.py runmesh --address 0.0.0.0:50051
# No --proxy-headers: the hub believes X-Forwarded-* only from CORTEX_TRUSTED_PROXIES.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "cortex.asgi:application"]
