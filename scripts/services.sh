#!/usr/bin/env bash
# Start PostgreSQL and Redis on loopback if they are not running (CI never depends on a hand).
set -u
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/keyturn-redis.log || true
fi
# System packages the tests drive for real: nginx for tests/service/test_nginx.py, which runs
# docs/proxies/nginx.conf, and Caddy for tests/service/test_caddy.py, which runs
# docs/proxies/Caddyfile (each test starts its own on loopback; the packages' services are
# not needed), and Chromium for tests/ui, which drive the dashboard in a real headless browser
# (Debian's package, through Playwright's executable_path; Playwright's own download is never
# used). apt waits up to 10 minutes for a package lock that another install holds, rather than
# failing at once and leaving those tests to fail under CI.
missing=()
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then missing+=(nginx); fi
if ! command -v caddy >/dev/null 2>&1; then missing+=(caddy); fi
if ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt=(apt-get -qq -o DPkg::Lock::Timeout=600)
  { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y "${missing[@]}"; } \
    >/dev/null 2>&1 \
    || echo "services.sh: could not install ${missing[*]}; tests/service/test_nginx.py (nginx)," \
      "tests/service/test_caddy.py (caddy) and tests/ui (chromium) will fail under CI" >&2
fi
# Wait until both answer: the first tests start right after this script.
for _ in $(seq 1 30); do
  pg_ok=1; redis_ok=1
  if command -v pg_isready >/dev/null 2>&1; then pg_isready -q -h 127.0.0.1 -p 5432 || pg_ok=0; fi
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis_ok=0
  fi
  [ "$pg_ok" = 1 ] && [ "$redis_ok" = 1 ] && break
  sleep 1
done
exit 0
