# Cortex Hub image: `daphne` serves HTTP/WebSocket; run `python manage.py runmesh` for nodes.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 CORTEX_DEBUG=0 CORTEX_LOG_JSON=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 cortex

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=cortex:cortex . .
RUN mkdir -p -m 700 /app/var && chown cortex:cortex /app/var

USER cortex
EXPOSE 8000 50051
# Web process; the mesh process uses the same image with: python manage.py runmesh --address 0.0.0.0:50051
# No --proxy-headers: the hub believes X-Forwarded-* only from CORTEX_TRUSTED_PROXIES.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "cortex.asgi:application"]
