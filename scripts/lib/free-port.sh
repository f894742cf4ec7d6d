# free_port: prints a TCP port on 127.0.0.1 that nothing answers on now (bash's /dev/tcp: no python or ss
# needed on a minimal Debian). Sourced by the test steps, benchmarks and image tests that start servers.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "free_port: no free port found" >&2
  return 1
}
