# vggeo tile server on the bundled sample data (or any store: docker run -e VGGEO_STORE=…).
# All geospatial dependencies come as wheels (shapely, pyproj, pyogrio bundle GEOS/PROJ/GDAL).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    XDG_CACHE_HOME=/app/.cache
WORKDIR /app

COPY . /app
# A C compiler only while vggeo builds its one compiled module (vggeo/lm/_walk.pyx), then removed.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install '/app[server,postgis]' \
 && python -c "import vggeo.lm._walk" \
 && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 vggeo \
 && mkdir -p /app/.cache && chown -R vggeo /app/.cache
USER vggeo
# Build the sample store now (used when sample_data/sample.gpkg is absent), not at first start.
RUN python -c "from vggeo.tiles.sample import default_store; print(default_store())"

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["vggeo", "serve", "--host", "0.0.0.0", "--port", "8000"]
