#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The main job (`make demo`): on a fresh machine, install what is missing, build, start the local
# stack in development mode and show it working end to end:
#   0. a real AWS Nitro attestation document, verified at its own time;
#   1. anvil, with the contracts deployed;
#   2. two enclaves (development attester, real model) behind host-proxy;
#   3. an attested chat through the proxy, verified by the client;
#   4. the same question asked on-chain by the example consumer contract, answered through the
#      relayer, with the stored answer, the fulfilment transaction and its gas;
#   5. the evidence bundle of step 3, re-verified offline.
# Every process started here is stopped when the demo ends or is interrupted (Ctrl-C).
#
# Usage: scripts/demo.sh [--keep-running]      (make demo, make demo-keep)
#   --keep-running  after the steps, keep the stack up and print how to use it (the proxy URL,
#                   the development root, attest/curl/openai examples) until Ctrl-C.
# Environment: NITRO_VECTORS_DIR (real Nitro documents, default ../shared/vectors/nitro),
#   DEMO_QUESTION (the question asked), ATTESTED_CACHE_DIR (default .cache), CARGO_TARGET_DIR.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

keep_running=false
for arg in "$@"; do
    case "$arg" in
        --keep-running) keep_running=true ;;
        -h | --help)
            sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "demo: unknown argument $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

model_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
question="${DEMO_QUESTION:-Explain in two sentences what a cryptographic signature proves.}"
max_tokens=64
# The run's logs (and chain state) live in a temporary folder; the development root and the
# evidence bundle in the cache, so that the printed re-verification command still works later.
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/attested-demo.XXXXXX")"
demo_dir="$ATTESTED_CACHE_DIR/demo"
pki="$demo_dir/dev-pki"
evidence="$demo_dir/evidence.json"
mkdir -p "$demo_dir"
# Plain logs (tracing's colours off).
export NO_COLOR=1

# ---------------------------------------------------------------------------------------------
# Process lifecycle. Each process runs in its own session (setsid), so its process group holds
# it and its children (cargo's rustc, for instance): stopping the group leaves nothing behind,
# and a Ctrl-C reaches them only through the cleanup below, in a known order.
groups=()
interrupted=false
waiting_for_ctrl_c=false

# spawn OUT ERR CMD...: starts CMD in the background in a new session; sets $spawned.
spawn() {
    local out="$1" err="$2"
    shift 2
    : >"$out" && : >"$err" # there from the start, for the checks that read them
    if [ "$out" = "$err" ]; then
        setsid "$@" >"$out" 2>&1 </dev/null &
    else
        setsid "$@" >"$out" 2>"$err" </dev/null &
    fi
    spawned=$!
    groups+=("$spawned")
}

# forget PID: a finished process group, no longer stopped at exit (its id may be reused).
forget() {
    local pid kept=()
    for pid in "${groups[@]}"; do
        [ "$pid" = "$1" ] || kept+=("$pid")
    done
    groups=("${kept[@]+"${kept[@]}"}")
}

alive() { kill -0 "$1" 2>/dev/null; }

stop_all() {
    local pid deadline=$((SECONDS + 15))
    for pid in "${groups[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${groups[@]}"; do
        while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    done
    # Whatever ignored SIGTERM for 15 seconds, and any stray child in the groups.
    for pid in "${groups[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    groups=()
}

on_exit() {
    local status=$?
    trap '' INT TERM
    trap - EXIT
    # A signal that reached a command substitution's subshell first ends this shell through
    # errexit with the subshell's status, before the trap here runs.
    if [ "$status" -eq 130 ] || [ "$status" -eq 143 ]; then interrupted=true; fi
    end_progress
    if $interrupted && $waiting_for_ctrl_c; then status=0; fi
    if ((${#groups[@]})); then
        printf '\nstopping the %d processes started here ...\n' "${#groups[@]}"
        stop_all
    fi
    if $interrupted && ! $waiting_for_ctrl_c; then
        echo "demo: interrupted; everything it started is stopped"
        rm -rf "$run_dir"
    elif [ "$status" -ne 0 ]; then
        echo "demo: failed; the logs are kept in $run_dir" >&2
    elif $keep_running; then
        echo "demo: stopped; the logs are kept in $run_dir"
    else
        rm -rf "$run_dir"
    fi
    exit "$status"
}
on_signal() {
    interrupted=true
    exit "$1"
}
trap on_exit EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# ---------------------------------------------------------------------------------------------
# Output: banners, progress for the slow steps (a line rewritten in place on a terminal, a line
# every 20 seconds otherwise), indented details.
if [ -t 1 ]; then on_terminal=true; else on_terminal=false; fi
progress_shown=false
last_report=0

progress() { # LABEL ELAPSED_SECONDS [DETAIL]
    local line="    ... $1 ${2}s${3:+ ($3)}"
    if $on_terminal; then
        printf '\r\033[K%s' "${line:0:$(($(tput cols 2>/dev/null || echo 100) - 1))}"
        progress_shown=true
    elif (($2 >= last_report + 20)); then
        last_report=$2
        printf '%s\n' "$line"
    fi
}

end_progress() {
    if $progress_shown; then printf '\r\033[K'; fi
    progress_shown=false
    last_report=0
}

banner() { printf '\n==> %s\n' "$1"; }
say() { printf '    %s\n' "$@"; }
indent() { sed 's/^/    /'; }

fail() {
    end_progress
    echo "demo: $*" >&2
    exit 1
}

# fail_with_log LOG MESSAGE: fails, showing the end of LOG.
fail_with_log() {
    end_progress
    echo "demo: $2; the last lines of $1:" >&2
    tail -n 20 "$1" | sed 's/^/    /' >&2
    exit 1
}

# wait_until LABEL TIMEOUT_SECONDS DETAIL_FUNCTION CHECK_COMMAND...: polls CHECK every half
# second with progress; fails after the timeout. CHECK may itself fail the demo (a process died).
wait_until() {
    local label="$1" timeout="$2" detail="$3"
    shift 3
    local start=$SECONDS
    until "$@"; do
        if ((SECONDS - start >= timeout)); then
            fail "$label: nothing after ${timeout}s"
        fi
        progress "$label" $((SECONDS - start)) "$($detail)"
        sleep 0.5
    done
    end_progress
}

no_detail() { :; }

# run_with_progress LABEL OUT ERR DETAIL_FUNCTION CMD...: runs CMD (spawned, so that Ctrl-C stops
# it cleanly) with progress until it ends; returns its exit status.
run_with_progress() {
    local label="$1" out="$2" err="$3" detail="$4"
    shift 4
    spawn "$out" "$err" "$@"
    local pid=$spawned start=$SECONDS status=0
    while alive "$pid"; do
        progress "$label" $((SECONDS - start)) "$($detail)"
        sleep 0.5
    done
    end_progress
    wait "$pid" || status=$?
    forget "$pid"
    return "$status"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------------------------
printf 'attested inference: the whole stack on this machine, in development mode\n'
say "logs of every process: $run_dir/"

banner "install what is missing (model, anvil/forge/cast/solc, Python tools)"
start=$SECONDS
"$root/scripts/install-deps.sh" >"$run_dir/install.log" || fail_with_log "$run_dir/install.log" "installing failed"
model="$("$root/scripts/fetch-model.sh")"
eval "$("$root/scripts/install-foundry.sh")"
say "model $model" "(sha256 $model_sha256), done in $((SECONDS - start))s"

# The dev profile shares its build with `make test` (dependencies are optimised in it, see
# Cargo.toml), so a newcomer builds the workspace once.
banner "build attest, enclave, host-proxy, relayer (a first build takes about 20 minutes on 2 cores) and the contracts"
start=$SECONDS
build_log="$run_dir/build.log"
build_detail() {
    local count last
    count="$(grep -c '^ *Compiling' "$build_log" || true)"
    last="$(tail -n 1 "$build_log" 2>/dev/null || true)"
    case "$last" in
        *Blocking*) echo "$count crates compiled; waiting for another cargo build to release the lock" ;;
        *) echo "$count crates compiled" ;;
    esac
}
run_with_progress "cargo build" "$build_log" "$build_log" build_detail \
    cargo build --locked -p attest -p enclave -p host-proxy -p relayer ||
    fail_with_log "$build_log" "the build failed"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
contracts_log="$run_dir/contracts-build.log"
run_with_progress "forge build (solc-js)" "$contracts_log" "$contracts_log" no_detail \
    env -C "$root/contracts" "$FORGE" build --offline \
    src/EnclaveRegistry.sol src/InferenceRelay.sol src/examples/ExampleConsumer.sol ||
    fail_with_log "$contracts_log" "compiling the contracts failed"
compiled="$(grep -c '^ *Compiling' "$build_log" || true)"
say "done in $((SECONDS - start))s ($([ "$compiled" = 0 ] && echo "already up to date" || echo "$compiled crates compiled"))"

# ---------------------------------------------------------------------------------------------
vectors="${NITRO_VECTORS_DIR:-$root/../shared/vectors/nitro}"
document="$vectors/marlin_aws_2024-12-13.cbor"
banner "0. a real AWS Nitro attestation document, verified at its own time (attest verify --at doc)"
if [ -f "$document" ]; then
    "$bin/attest" verify --at doc "$document" >"$run_dir/nitro.txt" ||
        fail_with_log "$run_dir/nitro.txt" "the real Nitro document did not verify"
    # Short: the image PCRs (0-2) of the 16, and the chain as a count.
    awk '
        /^  PCRs:/ { print "  PCR0-2 (of 16):"; next }
        /^    PCR[0-9]/ { if ($1 ~ /^PCR[012]$/) print; next }
        /^  (public_key|user_data|nonce):/ { next }
        /^  certificate chain/ { chain = 1; next }
        chain { if ($1 ~ /^(root|intermediate|leaf)/) certificates++; next }
        { print }
        END { printf "  certificate chain: %d certificates from the AWS root to the leaf, all checked\n", certificates }
    ' "$run_dir/nitro.txt" | indent
else
    say "(skipped: $document not found; put the shared vectors beside the checkout or set NITRO_VECTORS_DIR)"
fi

# ---------------------------------------------------------------------------------------------
banner "1. a local chain (anvil) with the contracts deployed"
anvil_port="$(free_port)"
export RPC_URL="http://127.0.0.1:$anvil_port"
spawn "$run_dir/anvil.log" "$run_dir/anvil.log" "$ANVIL" --port "$anvil_port"
anvil_pid=$spawned
chain_ready() {
    alive "$anvil_pid" || fail_with_log "$run_dir/anvil.log" "anvil stopped"
    "$CAST" chain-id --rpc-url "$RPC_URL" >/dev/null 2>&1
}
wait_until "starting anvil" 30 no_detail chain_ready
# shellcheck source=../contracts/script/lib.sh
source "$root/contracts/script/lib.sh" # send KEY TO SIG ARGS... (fails on revert, prints gasUsed)

# anvil's development account 0 deploys and owns the contracts (and the example consumer, so
# it also asks the question); the operator and the attestation verifier get keys derived from
# their names, as in contracts/script/demo.sh, funded with anvil_setBalance.
owner_key=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
operator_key="$("$CAST" keccak "demo operator")"
verifier_key="$("$CAST" keccak "demo attestation verifier")"
operator="$("$CAST" wallet address --private-key "$operator_key")"
verifier="$("$CAST" wallet address --private-key "$verifier_key")"
for account in "$operator" "$verifier"; do
    "$CAST" rpc --rpc-url "$RPC_URL" anvil_setBalance "$account" 0x56bc75e2d63100000 >/dev/null # 100 ether
done

export DEPLOYMENT_FILE="$run_dir/deployment.json"
# deploy.sh runs forge in the current folder: forge finds its solc (tools/solc) from there.
(cd "$root/contracts" && MODEL_HASH="0x$model_sha256" VERIFIER_ADDRESS="$verifier" \
    script/deploy.sh) >"$run_dir/deploy.log" 2>&1 ||
    fail_with_log "$run_dir/deploy.log" "deploying the contracts failed"
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$DEPLOYMENT_FILE" "$1"; }
chain_id="$(field chainId)"
registry="$(field enclaveRegistry)"
relay="$(field inferenceRelay)"
consumer="$(field exampleConsumer)"
say "anvil $RPC_URL (chain id $chain_id)" \
    "EnclaveRegistry $registry (owner: anvil account 0; trusts verifier key $verifier)" \
    "InferenceRelay  $relay" \
    "ExampleConsumer $consumer (model $model_sha256 allowed)"

# ---------------------------------------------------------------------------------------------
banner "2. two enclaves (development attester, real model) behind host-proxy"
enclave_ports=("$(free_port)" "$(free_port)")
while [ "${enclave_ports[1]}" = "${enclave_ports[0]}" ]; do enclave_ports[1]="$(free_port)"; done
# Each enclave's parent channel (operator binding, metrics): vsock in production, loopback here.
parent_ports=("$(free_port)" "$(free_port)")
while [ "${parent_ports[1]}" = "${parent_ports[0]}" ] || [[ " ${enclave_ports[*]} " == *" ${parent_ports[1]} "* ]]; do parent_ports[1]="$(free_port)"; done
while [[ " ${enclave_ports[*]} " == *" ${parent_ports[0]} "* ]]; do parent_ports[0]="$(free_port)"; done
enclave_pids=()
start_enclave() { # INDEX (1 or 2)
    local port="${enclave_ports[$(($1 - 1))]}" parent_port="${parent_ports[$(($1 - 1))]}"
    spawn "$run_dir/enclave-$1.log" "$run_dir/enclave-$1.log" "$bin/enclave" serve \
        --model "$model" --model-sha256 "$model_sha256" --listen "tcp:127.0.0.1:$port" \
        --parent-listen "tcp:127.0.0.1:$parent_port" \
        --attester dev --dev-pki "$pki" --onchain-relay "$chain_id:$relay"
    enclave_pids+=("$spawned")
}
enclave_listening() { # INDEX: true once it listens; fails the demo when it stopped
    grep -q '^listening on' "$run_dir/enclave-$1.log" 2>/dev/null && return 0
    alive "${enclave_pids[$(($1 - 1))]}" || fail_with_log "$run_dir/enclave-$1.log" "enclave $1 stopped while booting"
    return 1
}
enclaves_detail() {
    local i states=()
    for i in "${!enclave_pids[@]}"; do
        if grep -q '^listening on' "$run_dir/enclave-$((i + 1)).log" 2>/dev/null; then
            states+=("enclave $((i + 1)) listening")
        else
            states+=("enclave $((i + 1)) loading")
        fi
    done
    local joined
    joined="$(printf '%s, ' "${states[@]}")"
    echo "${joined%, }"
}
both_listening() {
    local first=0 second=0
    enclave_listening 1 || first=1
    enclave_listening 2 || second=1
    [ "$first" = 0 ] && [ "$second" = 0 ]
}
if [ -f "$pki/root.pem" ]; then
    say "development root $pki/root.pem (kept between runs)"
else
    say "development root $pki/root.pem (new; the first enclave creates it, the other waits for it)"
fi
start_enclave 1
start_enclave 2
wait_until "loading the model (hash-checked) and booting" 300 enclaves_detail both_listening
enclave_keys=()
for i in 1 2; do
    line="$(grep -m1 '^listening on' "$run_dir/enclave-$i.log")"
    enclave_keys+=("$(sed -n 's/.*enclave address \(0x[0-9a-fA-F]*\).*/\1/p' <<<"$line")")
    model_id="$(sed -n 's/.*(model \([^ ]*\) sha256.*/\1/p' <<<"$line")"
    say "enclave $i https://127.0.0.1:${enclave_ports[$((i - 1))]}  key ${enclave_keys[$((i - 1))]}"
done

proxy_port="$(free_port)"
proxy_url="https://127.0.0.1:$proxy_port"
spawn "$run_dir/host-proxy.log" "$run_dir/host-proxy.log" "$bin/host-proxy" \
    --listen "127.0.0.1:$proxy_port" \
    --backend "tcp:127.0.0.1:${enclave_ports[0]}" --backend "tcp:127.0.0.1:${enclave_ports[1]}" \
    --health-interval 1s --drain-timeout 2s
proxy_pid=$spawned
proxy_listening() {
    alive "$proxy_pid" || fail_with_log "$run_dir/host-proxy.log" "host-proxy stopped"
    grep -q '^listening on' "$run_dir/host-proxy.log"
}
wait_until "starting host-proxy" 30 no_detail proxy_listening
say "host-proxy $proxy_url -> both enclaves (TCP passthrough: TLS ends inside the enclaves)"

# ---------------------------------------------------------------------------------------------
banner "3. an attested chat through the proxy (attest chat, verified by the client)"
root_pem="$pki/root.pem"
say "Q: $question"
rm -f "$evidence"
run_with_progress "attested connection, generation ($max_tokens tokens at most), verification" \
    "$run_dir/chat.out" "$run_dir/chat.err" no_detail \
    "$bin/attest" chat --url "$proxy_url" --root "$root_pem" --model-sha256 "$model_sha256" \
    --max-tokens "$max_tokens" --temperature 0 --save-evidence "$evidence" "$question" ||
    fail_with_log "$run_dir/chat.err" "the attested chat failed"
# wrap: one paragraph, folded, continuation lines aligned after "A: ".
wrap() { { tr '\n' ' ' | sed 's/ *$//'; echo; } | fold -s -w 92 | sed 's/ *$//; 2,$s/^/   /' | indent; }
printf 'A: %s\n' "$(cat "$run_dir/chat.out")" | wrap
echo
indent <"$run_dir/chat.err"
pcr() { sed -n "s/^PCR$1: *\([0-9a-f]*\)$/\1/p" "$run_dir/chat.err"; }
pcr0="$(pcr 0)" pcr1="$(pcr 1)" pcr2="$(pcr 2)"
if [ -z "$pcr0" ] || [ -z "$pcr1" ] || [ -z "$pcr2" ]; then fail "attest chat printed no PCR0/1/2"; fi
answered_by="$(sed -n 's/^enclave key: *\(0x[0-9a-fA-F]*\).*/\1/p' "$run_dir/chat.err")"
for i in 1 2; do
    if [ "${answered_by,,}" = "${enclave_keys[$((i - 1))],,}" ]; then say "(answered by enclave $i)"; fi
done

# ---------------------------------------------------------------------------------------------
banner "4. the same question on-chain: ExampleConsumer.ask, answered through the relayer"
# The development attester measures the enclave executable into PCR0 and the configuration
# (model hash) into PCR2, so both enclaves share one image: the owner allows it.
send "$owner_key" "$registry" "allowImage(bytes,bytes,bytes)" "0x$pcr0" "0x$pcr1" "0x$pcr2" >/dev/null
image_id="$("$CAST" keccak "0x$pcr0$pcr1$pcr2")"
say "owner allowed the image (PCR0/1/2 above): imageId $image_id"

# One relayer, connected to enclave 1 directly rather than through the proxy: its attested
# connection is pinned to one enclave key (the one registered on-chain, which signs the
# fulfilments), and the proxy could hand a reconnection to the other enclave, whose key is
# different; the relayer would refuse it. A second operator would run a relayer for enclave 2.
enclave_url="https://127.0.0.1:${enclave_ports[0]}"
policy=(--root "$root_pem" --model-sha256 "$model_sha256" --pcr "0=$pcr0" --pcr "1=$pcr1" --pcr "2=$pcr2")
# The operator's relayer binds its operator on each enclave over the enclave's parent channel
# (reachable only from the parent instance): from then on the enclave attests that operator
# and signs on-chain fulfilments for it alone, so no other staker can harvest its answers.
for i in 1 2; do
    RELAYER_OPERATOR_KEY="$operator_key" "$bin/relayer" bind-operator \
        --enclave-parent "tcp:127.0.0.1:${parent_ports[$((i - 1))]}" \
        >"$run_dir/bind-$i.out" 2>"$run_dir/bind-$i.log" ||
        fail_with_log "$run_dir/bind-$i.log" "relayer bind-operator failed for enclave $i"
done
say "relayer bind-operator: both enclaves serve operator $operator (bound over their parent channels)"
RELAYER_VERIFIER_KEY="$verifier_key" "$bin/relayer" register --rpc-url "$RPC_URL" \
    --registry "$registry" --enclave-url "$enclave_url" "${policy[@]}" \
    >"$run_dir/register.out" 2>"$run_dir/register.log" ||
    fail_with_log "$run_dir/register.log" "relayer register failed"
say "relayer register: the verifier key checked enclave 1's attestation and registered its key" \
    "  (tx $(sed -n 's/.*(tx \(0x[0-9a-f]*\)).*/\1/p' "$run_dir/register.out"), valid for a day)"
# The trustless route for enclave 2: NitroRegistrar verifies its attestation document on-chain
# (COSE, the chain to the root, every P-384 signature with hints from nitro-hints). deploy.sh's
# registrar trusts only the AWS Nitro root; this one trusts the demo's development root, an
# explicit choice the owner makes visible by approving it (isAwsRoot() is false).
dev_root_hex="$(python3 - "$root_pem" <<'PY'
import base64, sys
lines = open(sys.argv[1]).read().split()
print("0x" + base64.b64decode("".join(l for l in lines if not l.startswith("-----") and "-" not in l)).hex())
PY
)"
read -r dev_registrar _ < <(cd "$root/contracts" && CONTRACTS_DIR="$root/contracts" create "$owner_key" \
    src/nitro/NitroRegistrar.sol:NitroRegistrar "$registry" "$(field es384Verifier)" "$dev_root_hex" 3600)
send "$owner_key" "$registry" "setRegistrar(address,bool)" "$dev_registrar" true >/dev/null
RELAYER_OPERATOR_KEY="$operator_key" "$bin/relayer" register --rpc-url "$RPC_URL" \
    --nitro-registrar "$dev_registrar" --enclave-url "https://127.0.0.1:${enclave_ports[1]}" "${policy[@]}" \
    >"$run_dir/register-nitro.out" 2>"$run_dir/register-nitro.log" ||
    fail_with_log "$run_dir/register-nitro.log" "relayer register --nitro-registrar failed"
nitro_gas() { awk -F', ' -v what="$1" 'index($0, what) == 1 { sub(/ gas\)$/, "", $NF); sum += $NF } END { print sum + 0 }' "$run_dir/register-nitro.out"; }
say "relayer register --nitro-registrar: NitroRegistrar $dev_registrar (development root) verified" \
    "  enclave 2's attestation document on-chain and registered its key, no verifier key involved" \
    "  (caching the intermediate: $(nitro_gas cached) gas; register: $(nitro_gas registered) gas)"
RELAYER_OPERATOR_KEY="$operator_key" "$bin/relayer" stake --rpc-url "$RPC_URL" --relay "$relay" \
    --amount-wei 1000000000000000000 >"$run_dir/stake.out" 2>"$run_dir/stake.log" ||
    fail_with_log "$run_dir/stake.log" "relayer stake failed"
say "relayer stake: $(cat "$run_dir/stake.out")"

relayer_log="$run_dir/relayer.log"
RELAYER_OPERATOR_KEY="$operator_key" spawn "$relayer_log" "$relayer_log" "$bin/relayer" run \
    --rpc-url "$RPC_URL" --relay "$relay" --enclave-url "$enclave_url" "${policy[@]}" \
    --enclave-parent "tcp:127.0.0.1:${parent_ports[0]}" \
    --state "$run_dir/relayer-state.json" --poll-interval-ms 250
relayer_pid=$spawned
relayer_alive() { alive "$relayer_pid" || fail_with_log "$relayer_log" "the relayer stopped"; }
relayer_started() { relayer_alive && grep -q 'relayer started' "$relayer_log"; }
wait_until "relayer attesting enclave 1" 60 no_detail relayer_started
say "relayer running (operator $operator, log $relayer_log)"

params='{"max_tokens":'"$max_tokens"',"temperature":0}'
params_hex="0x$(printf '%s' "$params" | od -An -tx1 | tr -d ' \n')"
deadline=$(($("$CAST" block latest --rpc-url "$RPC_URL" --field timestamp) + 900))
ask_gas="$(send "$owner_key" "$consumer" "ask(string,bytes,uint32,uint64)" "$question" "$params_hex" \
    4000000 "$deadline" --value 0.01ether)"
request_id="$("$CAST" call --rpc-url "$RPC_URL" "$consumer" "lastRequestId()(bytes32)")"
say "cast send $consumer \"ask(string,bytes,uint32,uint64)\" <question> '$params' 4000000 <deadline> --value 0.01ether" \
    "request $request_id (gas $ask_gas)" \
    "(greedy decoding, as in step 3, so anyone can re-run it and get the same answer)"

stored_question() {
    "$CAST" call --json --rpc-url "$RPC_URL" "$consumer" "question(bytes32)((string,bool,string))" "$request_id"
}
answer_stored() {
    relayer_alive
    stored_question | python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)[0][1] else 1)'
}
relayer_detail() {
    local last
    last="$(grep -E 'request seen|claimed|fulfilled|not done yet|not claimed|not taken' "$relayer_log" | tail -n 1)"
    case "$last" in
        *"not claimed"*) echo "the registry does not authorize enclave 1 (yet?); not claimed" ;;
        *"not taken"*) echo "the deadline is too close; not taken" ;;
        *fulfilled*) echo "fulfilled" ;;
        *claimed*) echo "answer signed by enclave 1 and request claimed; fulfilling" ;;
        *"request seen"*) echo "request seen; enclave 1 generating and signing" ;;
        "") echo "waiting for the relayer to see the request" ;;
        *) echo "retrying: ${last##*error=}" ;;
    esac
}
wait_until "relayer: claim, generation in enclave 1, fulfil" 600 relayer_detail answer_stored
stored="$(stored_question | python3 -c 'import json, sys; print(json.load(sys.stdin)[0][2])')"
printf 'A (stored by the consumer): %s\n' "$stored" | wrap
if [ "$stored" = "$(cat "$run_dir/chat.out")" ]; then
    say "the same answer as step 3's verified chat (both greedy)"
else
    say "note: differs from step 3's answer (expected the same under greedy decoding)"
fi

fulfilled_topic="$("$CAST" keccak "RequestFulfilled(bytes32,address,address,bytes32,bytes,bool)")"
read -r fulfil_tx signer_topic < <("$CAST" logs --json --rpc-url "$RPC_URL" --from-block 0 --address "$relay" \
    "$fulfilled_topic" "$request_id" |
    python3 -c 'import json, sys; logs = json.load(sys.stdin); assert len(logs) == 1, logs; print(logs[0]["transactionHash"], logs[0]["topics"][3])')
[ -n "${fulfil_tx:-}" ] || fail "no RequestFulfilled event for request $request_id"
signer="0x${signer_topic: -40}"
[ "${signer,,}" = "${enclave_keys[0],,}" ] || fail "the fulfilment names enclave $signer, not enclave 1 (${enclave_keys[0]})"
fulfil_gas="$("$CAST" receipt --rpc-url "$RPC_URL" "$fulfil_tx" gasUsed)"
say "fulfil transaction $fulfil_tx (RequestFulfilled event), gas used $fulfil_gas" \
    "signed by enclave 1's key ${enclave_keys[0]}, checked on-chain against the registry"

# ---------------------------------------------------------------------------------------------
banner "5. the evidence bundle of step 3, re-verified offline"
relative() { case "$1" in "$root"/*) echo "${1#"$root"/}" ;; *) echo "$1" ;; esac; }
verify_command=("$(relative "$bin/attest")" verify-evidence "$(relative "$evidence")"
    --root "$(relative "$root_pem")" --model-sha256 "$model_sha256")
say "saved to $(relative "$evidence"); verify it offline, at its documents' own time, with:" \
    "  ${verify_command[*]}"
"${verify_command[@]}" >"$run_dir/verify-evidence.out" 2>&1 ||
    fail_with_log "$run_dir/verify-evidence.out" "the evidence bundle did not verify"
grep -E '^(--- |enclave key|root|model sha256|receipt|response doc)' "$run_dir/verify-evidence.out" | indent | indent

if ! $keep_running; then
    printf '\nstopping the %d processes started here ...\n' "${#groups[@]}"
    stop_all
    printf 'demo: all steps succeeded (%ds in all)\n' "$SECONDS"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
banner "the stack keeps running: try it yourself (Ctrl-C stops everything)"
cat <<EOF
    proxy (OpenAI-compatible API, TLS ends inside the enclaves): $proxy_url
    development root (NOT the AWS root; trust it only for this demo): $(relative "$root_pem")
    chain: $RPC_URL (chain id $chain_id), consumer $consumer, relay $relay
    logs: $run_dir/

    Verified (attestation, TLS key binding, model hash and every receipt checked):
      $(relative "$bin/attest") chat --url $proxy_url --root $(relative "$root_pem") --model-sha256 $model_sha256 "Hello!"

    UNVERIFIED (curl -k accepts any certificate and checks nothing; the receipt is in the
    x-attested-* response headers, see docs/protocol.md):
      curl -sk $proxy_url/v1/chat/completions -H 'content-type: application/json' \\
        -d '{"model":"$model_id","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'

    UNVERIFIED, Python with the openai package (run it with $(relative "$ATTESTED_CACHE_DIR/openai-venv/bin/python");
    verify=False checks no certificate; to check an answer, pass its x-attested-* headers and
    exact bodies to attested_inference.verify_response, see README.md "Python"):
      import openai
      client = openai.OpenAI(base_url="$proxy_url/v1", api_key="unused",
                             http_client=openai.DefaultHttpxClient(verify=False))  # UNVERIFIED
      reply = client.chat.completions.create(model="$model_id", max_tokens=32,
                                             messages=[{"role": "user", "content": "Hello!"}])
      print(reply.choices[0].message.content)

    On-chain, answered by the relayer (then: cast call $consumer "question(bytes32)((string,bool,string))" <lastRequestId()>):
      $(relative "$CAST") send --rpc-url $RPC_URL --private-key $owner_key $consumer \\
        "ask(string,bytes,uint32,uint64)" "Hello!" $params_hex 4000000 \$((\$(date +%s) + 600)) --value 0.01ether
EOF
waiting_for_ctrl_c=true
while true; do
    for pid in "${groups[@]}"; do
        alive "$pid" || fail "a process of the stack stopped (pid $pid); see the logs in $run_dir"
    done
    sleep 1
done
