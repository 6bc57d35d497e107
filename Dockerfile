# keyturn serve in a container: a non-root user, a read-only root filesystem, the database
# and the root key on the /data volume, healthy when /readyz answers. docs/deploy.md.
#   docker build -t keyturn .
#   docker run -d --name keyturn --read-only -p 8080:8080 -v keyturn-data:/data keyturn
#   docker exec keyturn cat /data/root-key       # the root key, made on the first start

FROM python:3.12-slim AS wheels
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# Every extra `keyturn serve` can use: SQLite (default), PostgreSQL, rate limits in Redis.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[serve,postgres,redis]'

FROM python:3.12-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin keyturn \
 && install -d -o keyturn -g keyturn -m 0700 /data
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'keyturn[serve,postgres,redis]' \
 && rm -rf /wheels
# Nothing is written outside /data: no bytecode caches on the read-only root filesystem.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KEYTURN_DATABASE_URL=sqlite:////data/keyturn.db \
    KEYTURN_HOST=0.0.0.0 \
    KEYTURN_PORT=8080
USER keyturn
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]
# On a new database the root key goes to /data/root-key (0600), never to the log; later
# starts leave the file alone. Delete it once the key is in your secret manager.
ENTRYPOINT ["keyturn", "serve", "--root-key-file", "/data/root-key"]
