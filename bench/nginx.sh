#!/bin/sh
# Starts nginx on 127.0.0.1 for benchmarks: 1 worker, plain HTTP and HTTPS
# (h2 + http/1.1 by ALPN) on ports the OS picks, a certificate made for this
# run, /small (100 bytes), /1k, /16k and /64k (1,024, 16,384 and 65,536
# bytes). Prints "HTTP_PORT HTTPS_PORT CA_FILE" and
# stops by itself after LIFETIME seconds (default 600) or on SIGTERM.
#   usage: bench/nginx.sh [LIFETIME]
set -eu
lifetime=${1:-600}
dir=$(mktemp -d /tmp/salvo-bench-nginx.XXXXXX)
chmod 755 "$dir"
mkdir -p "$dir/www" "$dir/tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/key.pem" \
  -out "$dir/cert.pem" -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1
head -c 99 /dev/zero | tr '\0' 'a' >"$dir/www/small" && echo >>"$dir/www/small"
head -c 1024 /dev/zero | tr '\0' 'k' >"$dir/www/1k"
head -c 16384 /dev/zero | tr '\0' 'p' >"$dir/www/16k"
head -c 65536 /dev/zero | tr '\0' 'z' >"$dir/www/64k"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(port); https=$(port)
user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat >"$dir/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $dir/nginx.pid; error_log $dir/error.log warn; $user
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$http; listen 127.0.0.1:$https ssl http2;
    ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem;
    root $dir/www;
  }
}
CONF
/usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf" &
pid=$!
sleeper=""
# The lifetime's sleep goes too: killed with this script, it would outlive it.
trap 'kill $pid $sleeper 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
sleep 0.5
echo "$http $https $dir/cert.pem"
sleep "$lifetime" &
sleeper=$!
wait $sleeper
