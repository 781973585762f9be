#!/usr/bin/env bash
# kcat (Debian's kcat 1.7, librdkafka 2.0.2: an old client Sluice must support)
# against a running Sluice broker.
#
# Usage: tests/clients/kcat.sh HOST:PORT
#
# kcat cannot create topics, so this relies on auto.create.topics.enable
# (on in `sluice dev`, num.partitions=1). Covers: Metadata (-L -J), produce
# (-P -K -p -H) with acks 0/1/all x compression none/gzip/snappy/lz4/zstd,
# consume (-C) from the beginning / an absolute offset / a relative offset /
# a timestamp with exact offsets, keys, values and headers, and offsets by
# timestamp (-Q, ListOffsets) including earliest (-2) and latest (-1).
set -euo pipefail

BOOTSTRAP=${1:?usage: kcat.sh HOST:PORT}
NAME=kcat
STEP_TIMEOUT=30 # seconds for any one kcat invocation
SUFFIX=$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PASSED=0
CURRENT=start-up

step() { CURRENT=$*; echo "[$NAME] -- $*"; }
ok() { PASSED=$((PASSED + 1)); echo "[$NAME] ok: $*"; }
note() { echo "[$NAME] note: $*"; }
fail() {
  # stderr, so that it shows even from inside $(...)
  echo "[$NAME] FAIL at step '$CURRENT': $*" >&2
  exit 1
}

# run WHAT ARGS...: runs kcat (bounded), stdout to $WORK/out, stderr to $WORK/err.
run() {
  local what=$1
  shift
  local rc=0
  timeout "$STEP_TIMEOUT" kcat -b "$BOOTSTRAP" -m 10 "$@" >"$WORK/out" 2>"$WORK/err" <"${KCAT_STDIN:-/dev/null}" || rc=$?
  if [ "$rc" = 124 ]; then
    fail "timed out after ${STEP_TIMEOUT}s waiting for $what (kcat $*); stderr: $(tail -5 "$WORK/err")"
  elif [ "$rc" != 0 ]; then
    fail "$what failed (kcat $*, exit $rc); stderr: $(tail -5 "$WORK/err")"
  fi
}

# expect WHAT GOT WANT: exact comparison (multi-line values are diffed).
expect() {
  if [ "$2" != "$3" ]; then
    if [[ "$3" == *$'\n'* ]]; then
      fail "$1: differs from what was expected:
$(diff <(printf '%s\n' "$3") <(printf '%s\n' "$2") | head -20)"
    fi
    fail "$1: expected '$3', got '$2'"
  fi
  if [[ "$3" == *$'\n'* ]]; then ok "$1 ($(printf '%s\n' "$3" | wc -l) lines as expected)"; else ok "$1 = $3"; fi
}

# json EXPR: evaluates a Python expression over the JSON in $WORK/out (bound to j).
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" "$WORK/out"; }

# query_offset TOPIC PARTITION TIMESTAMP: ListOffsets through kcat -Q; prints the offset.
query_offset() {
  run "offset query $1:$2:$3" -Q -t "$1:$2:$3"
  local line
  line=$(grep -E "^$1 \[$2\] offset -?[0-9]+$" "$WORK/out" || true)
  [ -n "$line" ] || fail "kcat -Q -t $1:$2:$3 printed no offset: $(cat "$WORK/out" "$WORK/err")"
  echo "${line##* }"
}

echo "[$NAME] note: $(kcat -V 2>&1 | grep -m1 Version), bootstrap $BOOTSTRAP"

# ------------------------------------------------------------------ metadata
step "cluster metadata (-L -J)"
run "metadata" -L -J
expect "number of brokers" "$(json 'len(j["brokers"])')" 1
BROKER_ID=$(json 'j["brokers"][0]["id"]')
expect "advertised broker address" "$(json 'j["brokers"][0]["name"]')" "$BOOTSTRAP"

# ------------------------------------------------------------------- produce
TOPIC=sluice-kcat-$SUFFIX
EXPECTED=$WORK/expected
: >"$EXPECTED"
N=0
PER_BATCH=4
for acks in 1 all 0; do
  for codec in none gzip snappy lz4 zstd; do
    label="acks=$acks compression=$codec"
    step "produce $PER_BATCH records with $label"
    zopt=()
    [ "$codec" = none ] || zopt=(-z "$codec")
    : >"$WORK/in"
    for j in $(seq 1 $PER_BATCH); do
      value="v-$acks-$codec-$j-$(printf 'compressible%.0s' $(seq 1 30))"
      echo "k-$N:$value" >>"$WORK/in"
      echo "0 $N k-$N $value" >>"$EXPECTED"
      N=$((N + 1))
    done
    KCAT_STDIN=$WORK/in run "produce with $label" -P -t "$TOPIC" -p 0 -K : "${zopt[@]}" \
      -H "combo=$label" -X "acks=$acks" -X linger.ms=20 -X message.timeout.ms=15000
    if [ "$acks" = 0 ]; then
      note "acks=0: waiting for the high watermark to reach $N"
      deadline=$((SECONDS + 15))
      until [ "$(query_offset "$TOPIC" 0 -1)" = "$N" ]; do
        [ $SECONDS -lt $deadline ] || fail "timed out after 15s waiting for the high watermark to reach $N after acks=0 (at $(query_offset "$TOPIC" 0 -1))"
        sleep 0.2
      done
      ok "high watermark = $N"
    else
      expect "high watermark after $label" "$(query_offset "$TOPIC" 0 -1)" "$N"
    fi
  done
done

step "metadata of the auto-created topic $TOPIC"
run "topic metadata" -L -J -t "$TOPIC"
expect "topic listed" "$(json "[t['topic'] for t in j['topics']]")" "['$TOPIC']"
expect "topic error" "$(json "j['topics'][0].get('error')")" None
expect "partition count (num.partitions=1)" "$(json "len(j['topics'][0]['partitions'])")" 1
expect "partition 0 leader" "$(json "j['topics'][0]['partitions'][0]['leader']")" "$BROKER_ID"

# ------------------------------------------------------------------- consume
step "consume from the beginning (-o beginning -e)"
run "consume from the beginning" -C -t "$TOPIC" -p 0 -o beginning -e -f '%p %o %k %s\n'
expect "records (partition offset key value)" "$(cat "$WORK/out")" "$(cat "$EXPECTED")"

step "headers"
run "consume headers" -C -t "$TOPIC" -p 0 -o beginning -e -c 1 -f '%o %h\n'
expect "headers of offset 0" "$(cat "$WORK/out")" "0 combo=acks=1 compression=none"

step "consume from absolute offset 37 (-o 37)"
run "consume from offset 37" -C -t "$TOPIC" -p 0 -o 37 -e -f '%p %o %k %s\n'
expect "records from offset 37" "$(cat "$WORK/out")" "$(tail -n +38 "$EXPECTED")"

step "consume the last 3 records (-o -3)"
run "consume the last 3" -C -t "$TOPIC" -p 0 -o -3 -e -f '%p %o %k %s\n'
expect "last 3 records" "$(cat "$WORK/out")" "$(tail -n 3 "$EXPECTED")"

# ---------------------------------------------------------------- timestamps
TS_TOPIC=sluice-kcat-ts-$SUFFIX
step "produce 3 records with distinct timestamps to $TS_TOPIC"
for j in 0 1 2; do
  echo "t$j" >"$WORK/in"
  KCAT_STDIN=$WORK/in run "produce timestamped record $j" -P -t "$TS_TOPIC" -p 0 -X acks=all
  sleep 0.05
done
run "consume timestamps" -C -t "$TS_TOPIC" -p 0 -o beginning -e -f '%o %T %s\n'
expect "offsets and values" "$(awk '{print $1, $3}' "$WORK/out")" "$(printf '0 t0\n1 t1\n2 t2')"
mapfile -t TS < <(awk '{print $2}' "$WORK/out")
if ! [ "${TS[0]}" -lt "${TS[1]}" ] || ! [ "${TS[1]}" -lt "${TS[2]}" ]; then
  fail "timestamps are not increasing: ${TS[*]}"
fi
ok "timestamps increase: ${TS[*]}"

step "offsets by timestamp (-Q)"
expect "offset for timestamp ${TS[0]}" "$(query_offset "$TS_TOPIC" 0 "${TS[0]}")" 0
expect "offset for timestamp $((TS[0] + 1))" "$(query_offset "$TS_TOPIC" 0 $((TS[0] + 1)))" 1
expect "offset for timestamp ${TS[1]}" "$(query_offset "$TS_TOPIC" 0 "${TS[1]}")" 1
expect "offset for timestamp ${TS[2]}" "$(query_offset "$TS_TOPIC" 0 "${TS[2]}")" 2
expect "offset for timestamp $((TS[2] + 86400000)) (after every record)" \
  "$(query_offset "$TS_TOPIC" 0 $((TS[2] + 86400000)))" -1
expect "earliest offset (-2)" "$(query_offset "$TS_TOPIC" 0 -2)" 0
expect "latest offset (-1)" "$(query_offset "$TS_TOPIC" 0 -1)" 3

step "consume from a timestamp (-o s@${TS[1]})"
run "consume from timestamp" -C -t "$TS_TOPIC" -p 0 -o "s@${TS[1]}" -e -f '%o %s\n'
expect "records from timestamp ${TS[1]}" "$(cat "$WORK/out")" "$(printf '1 t1\n2 t2')"

echo "[$NAME] PASS ($PASSED assertions)"
