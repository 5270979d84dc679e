#!/usr/bin/env bash
# diagnostics.sh - collect what is needed to look into a herald problem into
# one text file, with secrets masked, and print its path.
#
#   scripts/diagnostics.sh [options] [CONFIG_FILE]
#
# Collected: herald --version, CONFIG_FILE with secrets masked, GET /metrics
# and GET /ready from the metrics port, GET /up from the main port, the
# running herald processes (limits, open descriptors, threads), ulimit -n,
# kernel settings (fs.file-max, fs.nr_open, fs.file-nr, net.core.somaxconn,
# net.ipv4.tcp_mem, ...), and the last lines of herald's log (--log FILE
# and/or --unit UNIT through journalctl).
#
# Masked wherever they appear in the configuration: the value of every key
# whose name contains "secret", "password", "passphrase", "token",
# "authorization" or "api_key"/"api-key"/"apikey" (so an app's `secret`, the
# TLS `passphrase`, webhook headers such as "X-Api-Token"). In every
# section: user:password@ in URLs, and URL query values whose name contains
# secret, password, token, key or sig. Read the file before sending it on.
#
# Needs bash, curl and coreutils only. Targets are loopback unless told
# otherwise.

set -u
umask 077

usage() {
    cat <<'EOF'
Usage: scripts/diagnostics.sh [options] [CONFIG_FILE]

  CONFIG_FILE             herald's JSON configuration (copied with secrets masked)
  --metrics-host HOST     metrics listener address        (default 127.0.0.1)
  --metrics-port PORT     metrics port                    (default 9601)
  --host HOST             main listener address for /up   (default 127.0.0.1)
  --port PORT             main port                       (default 6001)
  --https                 the main port serves TLS (ssl.enabled): use https for /up
  --bin PATH              herald binary for --version     (default: herald on PATH,
                          else the binary of a running herald)
  --log FILE              herald's log file: its last --lines lines are included
  --unit UNIT             systemd unit: journalctl -u UNIT -n LINES is included
  --lines N               log lines to include            (default 500)
  --timeout SECONDS       per HTTP request                (default 5)
  -o, --output FILE       where to write                  (default: a new file in ${TMPDIR:-/tmp})
  -h, --help              this text
EOF
}

metrics_host=127.0.0.1
metrics_port=9601
main_host=127.0.0.1
main_port=6001
scheme=http
bin=
log_file=
unit=
lines=500
timeout_s=5
output=
config=

die() {
    echo "diagnostics.sh: $*" >&2
    exit 2
}

need_arg() {
    if [ "$#" -lt 2 ] || [ -z "$2" ]; then
        die "$1 needs a value (see --help)"
    fi
}

while [ "$#" -gt 0 ]; do
    case "$1" in
    --metrics-host) need_arg "$@"; metrics_host=$2; shift 2 ;;
    --metrics-port) need_arg "$@"; metrics_port=$2; shift 2 ;;
    --host) need_arg "$@"; main_host=$2; shift 2 ;;
    --port) need_arg "$@"; main_port=$2; shift 2 ;;
    --https) scheme=https; shift ;;
    --bin) need_arg "$@"; bin=$2; shift 2 ;;
    --log) need_arg "$@"; log_file=$2; shift 2 ;;
    --unit) need_arg "$@"; unit=$2; shift 2 ;;
    --lines) need_arg "$@"; lines=$2; shift 2 ;;
    --timeout) need_arg "$@"; timeout_s=$2; shift 2 ;;
    -o | --output) need_arg "$@"; output=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; [ "$#" -gt 0 ] && { config=$1; shift; } ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$config" ] || die "only one CONFIG_FILE, got '$config' and '$1'"; config=$1; shift ;;
    esac
done

for n in "$metrics_port" "$main_port" "$lines" "$timeout_s"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "'$n' is not a number"
done
command -v curl >/dev/null 2>&1 || die "curl is required"
[ -z "$config" ] || [ -r "$config" ] || die "cannot read $config"
[ -z "$log_file" ] || [ -r "$log_file" ] || die "cannot read $log_file"

if [ -z "$output" ]; then
    output="${TMPDIR:-/tmp}/herald-diagnostics-$(date -u +%Y%m%dT%H%M%SZ)-$$.txt"
fi
: >"$output" || die "cannot write $output"

# ---- masking (pure bash: no sed, awk or jq needed) ----

# mask_matches TEXT REGEX REPLACEMENT: every match of REGEX becomes its
# first group followed by REPLACEMENT. Matching ignores case.
mask_matches() {
    local rest=$1 re=$2 repl=$3 out='' m keep
    shopt -s nocasematch
    while [[ $rest =~ $re ]]; do
        m=${BASH_REMATCH[0]}
        keep=${BASH_REMATCH[1]}
        out+="${rest%%"$m"*}${keep}${repl}"
        rest=${rest#*"$m"}
        [ -n "$m" ] || break
    done
    shopt -u nocasematch
    printf '%s' "$out$rest"
}

# URL credentials and secret-looking query values: in every section.
mask_urls() {
    local t
    t=$(mask_matches "$1" '(://)[^/@[:space:]"]+@' '***@')
    mask_matches "$t" '([?&][^=&#[:space:]"]*(secret|password|passphrase|token|key|sig)[^=&#[:space:]"]*=)[^&#[:space:]"]+' '***'
}

# JSON: the value of every key that names a secret.
mask_json() {
    local keys='(secret|password|passphrase|token|authorization|api[-_]?key)'
    local t
    t=$(mask_matches "$1" '("[^"]*'"$keys"'[^"]*"[[:space:]]*:[[:space:]]*)"([^"\\]|\\.)*"' '"***"')
    t=$(mask_matches "$t" '("[^"]*'"$keys"'[^"]*"[[:space:]]*:[[:space:]]*)[^]{[,}[:space:]"][^],}[:space:]]*' '"***"')
    mask_urls "$t"
}

# herald's own messages about the configuration (--check-config): on a line
# naming a secret key, the value it quotes ("got number 5", "got string ...").
mask_config_messages() {
    local line out=''
    shopt -s nocasematch
    while IFS= read -r line; do
        if [[ $line =~ (secret|password|passphrase|token|authorization|api[-_]?key) ]]; then
            shopt -u nocasematch
            line=$(mask_matches "$line" '(got [a-z]+ )("([^"\\]|\\.)*"|[^[:space:]]+)' '***')
            line=$(mask_matches "$line" '(: )"([^"\\]|\\.)*"' '"***"')
            shopt -s nocasematch
        fi
        out+="$line"$'\n'
    done <<<"$1"
    shopt -u nocasematch
    printf '%s' "$out"
}

# ---- output ----

section() {
    printf '\n===== %s =====\n' "$1" >>"$output"
}

# run TITLE COMMAND...: the command's output (masked URLs) and exit status.
run() {
    local title=$1 text rc
    shift
    section "$title"
    text=$("$@" 2>&1)
    rc=$?
    printf '%s\n' "$(mask_urls "$text")" >>"$output"
    [ "$rc" -eq 0 ] || printf '(exit status %d)\n' "$rc" >>"$output"
}

http_get() {
    local url=$1
    local extra=()
    [[ $url == https://* ]] && extra=(-k) # a diagnostic look at our own server, certificate not checked
    curl -sS --max-time "$timeout_s" "${extra[@]}" -w '\n(HTTP %{http_code})\n' "$url"
}

{
    echo "herald diagnostics"
    echo "collected: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -n) ($(uname -srm))"
    echo "by: uid $(id -u) ($(id -un 2>/dev/null || echo '?'))"
    echo "metrics: http://$metrics_host:$metrics_port  main: $scheme://$main_host:$main_port"
} >>"$output"

# ---- the running herald processes ----

pids=()
for d in /proc/[0-9]*; do
    comm=
    { read -r comm <"$d/comm"; } 2>/dev/null || continue
    [ "$comm" = herald ] && pids+=("${d#/proc/}")
done

if [ -z "$bin" ]; then
    if command -v herald >/dev/null 2>&1; then
        bin=$(command -v herald)
    elif [ "${#pids[@]}" -gt 0 ] && [ -x "/proc/${pids[0]}/exe" ]; then
        bin=/proc/${pids[0]}/exe
    fi
fi
if [ -n "$bin" ]; then
    run "herald --version ($bin)" "$bin" --version
else
    section "herald --version"
    echo "(no herald binary found: give --bin PATH)" >>"$output"
fi

section "running herald processes"
if [ "${#pids[@]}" -eq 0 ]; then
    echo "(none found in /proc)" >>"$output"
fi
for pid in "${pids[@]}"; do
    {
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
        echo "pid $pid: $cmdline"
        echo "  started: $(date -u -d "@$(stat -c %Y "/proc/$pid" 2>/dev/null || echo 0)" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"
        while IFS= read -r l; do
            case "$l" in
            "Max open files"* | "Max processes"* | "Max locked memory"*) echo "  limit: $l" ;;
            esac
        done <"/proc/$pid/limits"
        if fds=$(ls "/proc/$pid/fd" 2>/dev/null); then
            if [ -n "$fds" ]; then n=$(printf '%s\n' "$fds" | wc -l); else n=0; fi
            echo "  open descriptors: $n"
        else
            echo "  open descriptors: (not readable as uid $(id -u))"
        fi
        while IFS= read -r l; do
            case "$l" in
            Threads:* | VmRSS:* | VmHWM:*) echo "  $l" ;;
            esac
        done <"/proc/$pid/status"
        threads=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | sort | uniq -c | tr -s ' ' | tr '\n' ';')
        echo "  thread names: $threads"
    } >>"$output" 2>&1
done

# ---- configuration ----

section "configuration${config:+ ($config)}, secrets masked"
if [ -n "$config" ]; then
    printf '%s\n' "$(mask_json "$(cat "$config")")" >>"$output"
    if [ -n "$bin" ]; then
        section "herald --check-config $config"
        text=$("$bin" --check-config "$config" 2>&1)
        rc=$?
        printf '%s\n' "$(mask_config_messages "$(mask_urls "$text")")" >>"$output"
        printf '(exit status %d: %s)\n' "$rc" "$([ "$rc" -eq 0 ] && echo valid || echo invalid)" >>"$output"
    fi
else
    echo "(no CONFIG_FILE given)" >>"$output"
fi
section "HERALD_* environment of the running processes (names only)"
for pid in "${pids[@]}"; do
    if env_text=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null); then
        names=()
        while IFS= read -r l; do
            [[ $l == HERALD_* ]] && names+=("${l%%=*}")
        done <<<"$env_text"
        echo "pid $pid: ${names[*]:-(none)}" >>"$output"
    else
        echo "pid $pid: (environment not readable as uid $(id -u))" >>"$output"
    fi
done
[ "${#pids[@]}" -gt 0 ] || echo "(no running herald)" >>"$output"

# ---- endpoints ----

run "GET http://$metrics_host:$metrics_port/ready (metrics port)" http_get "http://$metrics_host:$metrics_port/ready"
run "GET $scheme://$main_host:$main_port/up (main port)" http_get "$scheme://$main_host:$main_port/up"
run "GET $scheme://$main_host:$main_port/ready (main port)" http_get "$scheme://$main_host:$main_port/ready"
run "GET http://$metrics_host:$metrics_port/metrics (metrics port)" http_get "http://$metrics_host:$metrics_port/metrics"

# ---- limits and kernel settings ----

section "ulimit (this shell)"
{
    echo "ulimit -n (soft): $(ulimit -Sn)"
    echo "ulimit -n (hard): $(ulimit -Hn)"
    echo "nproc: $(nproc 2>/dev/null)"
} >>"$output"

section "kernel settings"
for key in fs.file-max fs.nr_open fs.file-nr net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_mem \
    net.ipv4.ip_local_port_range net.core.netdev_max_backlog net.ipv4.tcp_rmem net.ipv4.tcp_wmem; do
    f=/proc/sys/${key//./\/}
    if [ -r "$f" ]; then
        printf '%s = %s\n' "$key" "$(tr '\t' ' ' <"$f")" >>"$output"
    else
        printf '%s = (not readable)\n' "$key" >>"$output"
    fi
done
if [ -r /proc/loadavg ]; then
    printf 'loadavg = %s\n' "$(cat /proc/loadavg)" >>"$output"
fi
if [ -r /proc/meminfo ]; then
    while IFS= read -r l; do
        case "$l" in MemTotal:* | MemAvailable:*) echo "$l" >>"$output" ;; esac
    done </proc/meminfo
fi

# ---- logs ----

if [ -n "$log_file" ]; then
    run "last $lines lines of $log_file" tail -n "$lines" "$log_file"
fi
if [ -n "$unit" ]; then
    if command -v journalctl >/dev/null 2>&1; then
        run "journalctl -u $unit -n $lines" journalctl -u "$unit" -n "$lines" --no-pager -o short-iso
    else
        section "journalctl -u $unit"
        echo "(journalctl is not available on this machine)" >>"$output"
    fi
fi
if [ -z "$log_file" ] && [ -z "$unit" ]; then
    section "log"
    echo "(no --log FILE or --unit UNIT given)" >>"$output"
fi

echo "diagnostics written to:"
echo "$output"
