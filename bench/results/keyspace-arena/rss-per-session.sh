#!/bin/bash
# usage: mem.sh <binary> <label> : RSS per 1 KB session after 100k and 1M SETs, as bench/compare measures it.
bin=$1; label=$2
dir=$(mktemp -d /tmp/hc-mem/data-XXXX)
port=$((20000 + RANDOM % 10000))
$bin --data-dir $dir --redis-addr 127.0.0.1:$port --memcache-addr 127.0.0.1:$((port+1)) --http-addr 127.0.0.1:$((port+2)) --peer-addr 127.0.0.1:$((port+3)) --log-level warn &
pid=$!
sleep 1.5
rss() { awk '/VmRSS/ {print $2*1024}' /proc/$pid/status; }
idle=$(rss)
for n in 100000 1000000; do
  $bin bench --addr 127.0.0.1:$port --protocol redis --scenario writes --keys $n --value-size 1024 --duration 1ms --warmup 0s --prefill --json --quiet >/dev/null 2>&1
  sleep 1
  r=$(rss)
  echo "$label $n sessions: $(( (r-idle)/n )) B/session (RSS $((r>>20)) MB)"
done
kill $pid; wait $pid 2>/dev/null
rm -rf $dir
