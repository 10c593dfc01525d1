#!/usr/bin/env bash
# The one-command GPU check, run on a lent GPU machine (docs/gpu-check.md): builds hymoe with
# CUDA for the GPU it finds, runs the GPU tests, the GPU microbenchmarks (bench/bench_gpu), an
# end-to-end `hymoe bench --device cuda` on a synthetic Qwen3-30B-A3B cut to a few layers, then
# the rest of the test suite, and writes OUT_DIR/gpu-check.json.
#
#   bash scripts/gpu-check.sh OUT_DIR
#
# The machine has nvcc, CMake, ninja and python3 but none of hymoe's Debian dependencies and no
# network: scripts/gpu-deps.sh (run beforehand on the developer's machine) puts their .debs in
# .gpu-deps/, which travels with the call; they are unpacked here into a prefix under /tmp, never
# into /. Every step is time-boxed; a failing step is recorded and the next one runs. The whole
# script keeps inside HYMOE_DEADLINE_S seconds (default 540: the tool allows 600 per command).
#
# Files in OUT_DIR (the tool returns at most 8): gpu-check.json, build.log, tests.log, bench.log,
# bench_gpu.json, e2e.json, offload.json (the GPU expert tier at 25%/50% of the expert bytes and
# naive offloading), and sanitizer.log with HYMOE_SANITIZER=1.
#
# Environment (all optional):
#   HYMOE_E2E_LAYERS   layers of the synthetic model (default 4; Qwen3-30B-A3B: about 15 s of synth each)
#   HYMOE_E2E_SHAPE, HYMOE_E2E_TYPE   its shape and type (default qwen3-30b-a3b, q4_k)
#   HYMOE_SANITIZER=1  one compute-sanitizer memcheck pass over the GPU test programs
#   HYMOE_BENCH_QUICK=1  bench_gpu --quick
#   HYMOE_COMMIT       the commit under test (else git, else .gpu-deps/commit.txt)
#   HYMOE_DEADLINE_S   seconds the whole script may take (default 540)
#   HYMOE_GPU_STEPS    the steps to run, comma-separated (default: all of
#                      deps,configure,build,test,bench,e2e,sanitizer)
#   HYMOE_GPU_CUDA     HYMOE_CUDA for the configure (default ON; OFF checks the script on a
#                      machine without a GPU)
#   HYMOE_GPU_BUILD    build folder (default build-gpu)    HYMOE_DEPS_PREFIX (default /tmp/hymoe-deps)
#   HYMOE_JOBS         build and test parallelism (default: all cores)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
if [ $# -ne 1 ]; then
    echo "usage: scripts/gpu-check.sh OUT_DIR" >&2
    exit 2
fi
mkdir -p "$1" || exit 1
out=$(cd "$1" && pwd)

t0=$(date +%s)
deadline=$((t0 + ${HYMOE_DEADLINE_S:-540}))
build=${HYMOE_GPU_BUILD:-build-gpu}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
prefix=${HYMOE_DEPS_PREFIX:-/tmp/hymoe-deps}
work=/tmp/hymoe-gpu-check
models=/tmp/hymoe-models  # kept between calls on a warm machine: synth runs once per shape
jobs=${HYMOE_JOBS:-$(nproc)}
layers=${HYMOE_E2E_LAYERS:-4}
e2e_shape=${HYMOE_E2E_SHAPE:-qwen3-30b-a3b}
e2e_type=${HYMOE_E2E_TYPE:-q4_k}
cuda_mode=${HYMOE_GPU_CUDA:-ON}
steps_wanted=",${HYMOE_GPU_STEPS:-deps,configure,build,test,bench,e2e,sanitizer},"
rm -rf "$work"
mkdir -p "$work" "$models"
steps_tsv=$work/steps.tsv
: >"$steps_tsv"

wanted() { [[ "$steps_wanted" == *",$1,"* ]]; }

now() { date +%s.%N; }

# record NAME RC START END NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$steps_tsv"; }

# run_step NAME BUDGET_S LOG CMD...: runs CMD under `timeout`, limited also by what is left
# before the deadline (20 s are kept for the report), output appended to LOG. Returns CMD's
# status; 124 means it ran out of time, 125 that it did not start for lack of time.
run_step() {
    local name=$1 budget=$2 log=$3
    shift 3
    local left=$((deadline - $(date +%s) - 20))
    if [ "$left" -lt 10 ]; then
        record "$name" 125 "$(now)" "$(now)" "not started: the deadline is near"
        echo "== $name: not started (deadline)"
        return 125
    fi
    [ "$budget" -gt "$left" ] && budget=$left
    echo "== $name (at most ${budget}s)"
    echo "== $name: $* (at most ${budget}s)" >>"$log"
    local start rc
    start=$(now)
    timeout --kill-after=10 "$budget" "$@" </dev/null >>"$log" 2>&1
    rc=$?
    record "$name" "$rc" "$start" "$(now)" ""
    echo "== $name: exit $rc after $(($(date +%s) - ${start%.*}))s"
    return "$rc"
}

# ---- the GPU and the toolkit ----------------------------------------------------------------
export PATH="$PATH:/usr/local/cuda/bin"
{
    echo "== gpu-check at $(date -u +%Y-%m-%dT%H:%M:%SZ) on ${HOSTNAME:-?}, $(nproc) cores"
    timeout 30 nvidia-smi 2>&1 || echo "(no nvidia-smi)"
    nvcc --version 2>&1 || echo "(no nvcc)"
    cmake --version 2>&1 | head -1
    ninja --version 2>&1 || echo "(no ninja)"
} >"$out/build.log"
timeout 30 nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader \
    >"$work/gpu.csv" 2>/dev/null || : >"$work/gpu.csv"
arch=$(head -1 "$work/gpu.csv" | awk -F', ' '{print $3}' | tr -d '.')
[[ "$arch" =~ ^[0-9]+$ ]] || arch=90
echo "== GPU: $(head -1 "$work/gpu.csv" || true) (CUDA architecture $arch)"

# ---- the Debian packages from .gpu-deps/, unpacked into $prefix ------------------------------
# The .pc files say prefix=/usr and some links are absolute: both are pointed into the prefix.
# Only the libraries the system lacks go on LD_LIBRARY_PATH (through $prefix/rt), so no system
# program ever loads one of ours in place of its own.
extract_deps() {
    shopt -s nullglob
    local debs=("$root"/.gpu-deps/*.deb)
    shopt -u nullglob
    if [ ${#debs[@]} -eq 0 ]; then
        echo "no .gpu-deps/*.deb: using the packages installed here"
        return 0
    fi
    rm -rf "$prefix"
    mkdir -p "$prefix/rt" "$prefix/bin" || return 1
    local d l f n
    for d in "${debs[@]}"; do
        if command -v dpkg-deb >/dev/null; then
            dpkg-deb -x "$d" "$prefix" || return 1
        else  # a .deb is an ar archive holding data.tar.{xz,zst,gz}
            local tmp
            tmp=$(mktemp -d) && (cd "$tmp" && ar x "$d" && tar -xf data.tar.* -C "$prefix") || return 1
            rm -rf "$tmp"
        fi
    done
    find "$prefix" -type l -lname '/*' -print0 | while IFS= read -r -d '' l; do
        ln -sfn "$prefix$(readlink "$l")" "$l"
    done
    find "$prefix" -name '*.pc' -type f -exec sed -i -E "s#^([A-Za-z_]+)=/usr(/|\$)#\\1=$prefix/usr\\2#" {} + || return 1
    # A library goes into rt/ under its soname (what the loader looks up), read from the file.
    declare -A known=()
    for n in $(ldconfig -p 2>/dev/null | awk 'NR > 1 {print $1}'); do known[$n]=1; done
    for f in "$prefix"/lib/x86_64-linux-gnu/lib*.so.* "$prefix"/usr/lib/x86_64-linux-gnu/lib*.so.*; do
        [ -f "$f" ] || continue
        n=$(readelf -d "$f" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
        [ -n "$n" ] || n=$(basename "$f")  # no readelf: every name goes in, the soname among them
        [ -n "${known[$n]:-}" ] || ln -sfn "$f" "$prefix/rt/$n"
    done
    echo "unpacked ${#debs[@]} packages into $prefix; libraries the system lacks: $(ls "$prefix/rt" | tr '\n' ' ')"
}

cmake_extra=()
if wanted deps; then
    start=$(now)
    extract_deps >>"$out/build.log" 2>&1
    rc=$?
    record deps "$rc" "$start" "$(now)" ""
    echo "== deps: exit $rc"
    if [ -d "$prefix/usr" ]; then
        export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
        export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
        export LD_LIBRARY_PATH="$prefix/rt${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        cmake_extra+=("-DCMAKE_PREFIX_PATH=$prefix/usr")
        if ! command -v pkg-config >/dev/null && [ -x "$prefix/usr/bin/pkgconf" ]; then
            printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' \
                "$prefix/usr/lib/x86_64-linux-gnu" "$prefix/usr/bin/pkgconf" >"$prefix/bin/pkg-config"
            chmod +x "$prefix/bin/pkg-config"
            export PATH="$prefix/bin:$PATH"
            cmake_extra+=("-DPKG_CONFIG_EXECUTABLE=$prefix/bin/pkg-config")
        fi
    fi
fi

# ---- configure and build ---------------------------------------------------------------------
configured=0
if wanted configure; then
    cuda_flags=(-DHYMOE_CUDA="$cuda_mode")
    [ "$cuda_mode" != OFF ] && cuda_flags+=(-DCMAKE_CUDA_ARCHITECTURES="$arch")
    run_step configure 120 "$out/build.log" cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        "${cuda_flags[@]}" "${cmake_extra[@]}" && configured=1
fi
if wanted build && [ "$configured" = 1 ]; then
    # -k 0: build every target that can be built, so one broken file does not hide the rest.
    run_step build 450 "$out/build.log" cmake --build "$build" -j "$jobs" -- -k 0
    if [ $? = 124 ]; then
        # Testing a half-built tree would only spend device time: stop here. A second call on the
        # still-warm machine finds build-gpu/ as this one left it and builds only the rest.
        echo "== the build ran out of time: run the same command again at once, on the warm machine"
        deadline=$(date +%s)
    fi
fi

hymoe="$build/bin/hymoe"
model="$models/$e2e_shape-$e2e_type-L$layers.gguf"
model_part="$models/$e2e_shape-$e2e_type-L$layers.part.gguf"  # renamed once synth has finished

# The synthetic model is written in the background while the GPU tests run; bench_gpu waits for
# it so that its host-side launches have the CPU to themselves.
synth_pid=
if wanted e2e && [ -x "$hymoe" ] && [ ! -s "$model" ]; then
    run_step e2e-synth 180 "$out/bench.log" nice -n 5 "$hymoe" synth --shape "$e2e_shape" --type "$e2e_type" \
        --layers "$layers" -t "$jobs" --seed 1 -o "$model_part" >/dev/null &
    synth_pid=$!
fi

# ---- the GPU tests (the rest of the suite runs last: CI runs it too) -------------------------
if wanted test && [ "$configured" = 1 ]; then
    run_step test-gpu 150 "$out/tests.log" ctest --test-dir "$build" -L gpu -j 4 --timeout 120 \
        --output-on-failure --output-junit "$work/junit-gpu.xml"
fi

if [ -n "$synth_pid" ]; then
    wait "$synth_pid" && mv -f "$model_part" "$model"
    rm -f "$model_part"
fi

# ---- benchmarks ------------------------------------------------------------------------------
if wanted bench && [ -x "$build/bench/bench_gpu" ]; then
    quick=()
    [ "${HYMOE_BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
    run_step bench-gpu 180 "$out/bench.log" "$build/bench/bench_gpu" --json "$out/bench_gpu.json" "${quick[@]}"
elif wanted bench; then
    record bench-gpu 127 "$(now)" "$(now)" "no $build/bench/bench_gpu"
fi

if wanted e2e && [ -s "$model" ]; then
    # stdout is the JSON; stderr (progress, the machine record) goes to bench.log.
    left=$((deadline - $(date +%s) - 20))
    budget=150
    [ "$budget" -gt "$left" ] && budget=$left
    if [ "$budget" -ge 10 ]; then
        echo "== e2e-bench (at most ${budget}s)"
        start=$(now)
        timeout --kill-after=10 "$budget" "$hymoe" bench -m "$model" -p 128 -n 32 -r 3 -o json --device cuda \
            --no-progress </dev/null >"$out/e2e.json" 2>>"$out/bench.log"
        rc=$?
        record e2e-bench "$rc" "$start" "$(now)" ""
        echo "== e2e-bench: exit $rc"
    else
        record e2e-bench 125 "$(now)" "$(now)" "not started: the deadline is near"
    fi
elif wanted e2e; then
    record e2e-bench 127 "$(now)" "$(now)" "no model: synth failed or hymoe was not built"
fi

# The GPU expert tier on the same model: the expert cache at 25% and 50% of the expert bytes,
# and naive offloading (every miss copied, no prefetch) at 25%, one JSON array in offload.json.
if wanted e2e && [ -s "$model" ]; then
    expert_gib=$("$hymoe" inspect --json "$model" 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["offload_split"]["expert_bytes"] / 2**30)')
    echo "[]" >"$out/offload.json"
    for spec in "25 auto" "50 auto" "25 naive"; do
        set -- $spec
        left=$((deadline - $(date +%s) - 20))
        if [ -z "$expert_gib" ] || [ "$left" -lt 30 ]; then
            record "offload-$1-$2" 125 "$(now)" "$(now)" "not started: no expert size or the deadline is near"
            continue
        fi
        gib=$(python3 -c "print(f'{$expert_gib * $1 / 100:.4f}')")
        extra=()
        [ "$2" = naive ] && extra=(--misses gpu --no-prefetch)
        echo "== offload-$1-$2 (--expert-cache-gb $gib ${extra[*]})"
        start=$(now)
        timeout --kill-after=10 60 "$hymoe" bench -m "$model" -p 128 -n 32 -r 2 -o json --device cuda --no-progress \
            --expert-cache-gb "$gib" "${extra[@]}" </dev/null >"$work/offload-$1-$2.json" 2>>"$out/bench.log"
        rc=$?
        record "offload-$1-$2" "$rc" "$start" "$(now)" ""
        python3 - "$out/offload.json" "$work/offload-$1-$2.json" "$1" "$2" <<'PY'
import json, sys
path, part, pct, mode = sys.argv[1:]
rows = json.load(open(path))
try:
    for row in json.load(open(part)):
        row["expert_cache_percent"], row["offload_mode"] = int(pct), mode
        rows.append(row)
except (OSError, ValueError):
    pass
json.dump(rows, open(path, "w"), indent=2)
PY
    done
fi

# ---- the rest of the test suite ---------------------------------------------------------------
if wanted test && [ "$configured" = 1 ]; then
    run_step test-rest 200 "$out/tests.log" ctest --test-dir "$build" -LE gpu -j "$jobs" --timeout 120 \
        --output-on-failure --output-junit "$work/junit-rest.xml"
fi

# ---- compute-sanitizer over the GPU tests (HYMOE_SANITIZER=1) --------------------------------
if wanted sanitizer && [ "${HYMOE_SANITIZER:-0}" = 1 ] && [ "$configured" = 1 ]; then
    # The GPU test programs, from ctest's own list of the tests labelled gpu.
    ctest --test-dir "$build" -L gpu --show-only=json-v1 2>/dev/null | python3 -c '
import json, sys
seen = []
for t in json.load(sys.stdin).get("tests", []):
    cmd = t.get("command") or []
    if cmd and cmd[0] not in seen:
        seen.append(cmd[0])
print("\n".join(seen))' >"$work/gpu-tests.txt"
    cat >"$work/sanitize.sh" <<'EOF'
#!/usr/bin/env bash
# Each GPU test program once under memcheck; the exit status is the number that failed.
failed=0
while IFS= read -r exe; do
    [ -x "$exe" ] || continue
    echo "== compute-sanitizer --tool memcheck $exe"
    compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 20 "$exe" --gtest_brief=1 || failed=$((failed + 1))
done <"$1"
exit "$failed"
EOF
    run_step sanitizer 240 "$out/sanitizer.log" bash "$work/sanitize.sh" "$work/gpu-tests.txt"
fi

# ---- the report ------------------------------------------------------------------------------
OUT="$out" WORK="$work" ROOT="$root" E2E="$e2e_shape.$e2e_type.L$layers" python3 - <<'EOF'
import json, os, re, subprocess, sys, time
import xml.etree.ElementTree as ET

out, work, root = os.environ["OUT"], os.environ["WORK"], os.environ["ROOT"]

def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""

gpu = open(os.path.join(work, "gpu.csv")).read().strip().splitlines()
gpu = [f.strip() for f in gpu[0].split(",")] if gpu else []
nvcc = re.search(r"release [^\n]*", run(["nvcc", "--version"]))

commit, source, dirty = os.environ.get("HYMOE_COMMIT", ""), "HYMOE_COMMIT", None
if not commit:
    commit, source = run(["git", "-C", root, "rev-parse", "HEAD"]), "git"
if not commit:
    source = ".gpu-deps/commit.txt"
    try:
        info = dict(l.split(" ", 1) for l in open(os.path.join(root, ".gpu-deps", "commit.txt")).read().splitlines())
        commit, dirty = info.get("commit", ""), int(info.get("dirty", "0"))
    except (OSError, ValueError):
        commit, source = "unknown", "none"

def junit(path):
    """(passed, failed, skipped, failed names) of one ctest JUnit file."""
    p = f = s = 0
    names = []
    try:
        cases = ET.parse(path).getroot().iter("testcase")
    except (OSError, ET.ParseError):
        return None
    for c in cases:
        status = c.get("status", "run")
        if c.find("failure") is not None or c.find("error") is not None or status == "fail":
            f += 1
            names.append(c.get("name", "?"))
        elif status == "disabled" or (c.find("skipped") is not None and
                                      c.find("skipped").get("message", "").startswith(("SKIP_", "Disabled"))):
            s += 1  # GTEST_SKIP (SKIP_REGULAR_EXPRESSION_MATCHED), a skip return code, or disabled
        elif status == "notrun" or c.find("skipped") is not None:
            f += 1  # "Unable to find executable": a test program that did not build
            why = c.find("skipped").get("message", "not run") if c.find("skipped") is not None else "not run"
            names.append(f"{c.get('name', '?')} ({why})")
        else:
            p += 1
    return p, f, s, names

tests = {"passed": 0, "failed": 0, "skipped": 0, "failed_tests": []}
by_label = {}
for label in ("gpu", "rest"):
    r = junit(os.path.join(work, f"junit-{label}.xml"))
    if r is None:
        continue
    by_label[label] = {"passed": r[0], "failed": r[1], "skipped": r[2]}
    tests["passed"] += r[0]
    tests["failed"] += r[1]
    tests["skipped"] += r[2]
    tests["failed_tests"] += r[3]

def load(name):
    try:
        with open(os.path.join(out, name)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None

figures = []
bench = load("bench_gpu.json")
if isinstance(bench, dict):
    for f in bench.get("figures", []):
        figures.append({"source": "bench_gpu", **f})
e2e = load("e2e.json")
if isinstance(e2e, list):
    for row in e2e:
        pp, tg = row.get("n_prompt", 0), row.get("n_gen", 0)
        test = f"pp{pp}" if pp else f"tg{tg}"
        figures.append({
            "source": "hymoe bench",
            "name": f"e2e.{os.environ['E2E']}.{test}",
            "value": row.get("avg_ts"), "unit": "tok/s",
            "limit": row.get("limit_ts"), "fraction": row.get("fraction"),
            "limit_kind": row.get("limit_kind"), "stddev": row.get("stddev_ts"),
            "backends": row.get("backends"),
        })

for row in load("offload.json") or []:
    pp, tg = row.get("n_prompt", 0), row.get("n_gen", 0)
    test = f"pp{pp}" if pp else f"tg{tg}"
    experts = row.get("experts", {})
    figures.append({
        "source": "hymoe bench --expert-cache-gb",
        "name": f"offload.{row.get('expert_cache_percent')}%.{row.get('offload_mode')}.{test}",
        "value": row.get("avg_ts"), "unit": "tok/s",
        "limit": row.get("limit_ts"), "fraction": row.get("fraction"),
        "hit_rate": experts.get("hit_rate"), "copied_bytes_per_token": experts.get("read_bytes_per_token"),
    })

steps = []
for line in open(os.path.join(work, "steps.tsv")).read().splitlines():
    name, rc, start, end, note = (line.split("\t") + [""] * 5)[:5]
    step = {"name": name, "rc": int(rc), "seconds": round(float(end) - float(start), 1)}
    if int(rc) == 124:
        note = note or "timed out"
    if note:
        step["note"] = note
    steps.append(step)

report = {
    "device": gpu[0] if gpu else "unknown (nvidia-smi found no GPU)",
    "driver": gpu[1] if len(gpu) > 1 else "",
    "compute_cap": gpu[2] if len(gpu) > 2 else "",
    "memory": gpu[3] if len(gpu) > 3 else "",
    "cuda": nvcc.group(0) if nvcc else "",
    "commit": commit, "commit_source": source,
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "tests_passed": tests["passed"], "tests_failed": tests["failed"], "tests_skipped": tests["skipped"],
    "failed_tests": tests["failed_tests"], "tests_by_label": by_label,
    "figures": figures,
    "steps": steps,
    "ok": all(s["rc"] == 0 for s in steps) and tests["failed"] == 0,
}
if dirty is not None:
    report["uncommitted_changes"] = dirty
with open(os.path.join(out, "gpu-check.json"), "w") as fh:
    json.dump(report, fh, indent=2)
    fh.write("\n")

# Logs over 8 MiB keep their first MiB and last 6 MiB (the tool returns files of 16 MiB at most).
for name in os.listdir(out):
    path = os.path.join(out, name)
    if name.endswith(".log") and os.path.getsize(path) > 8 << 20:
        data = open(path, "rb").read()
        open(path, "wb").write(data[: 1 << 20] + b"\n[... cut ...]\n" + data[-(6 << 20):])

print(f"\n{report['device']} | {report['cuda']} | commit {commit[:12]} ({source})")
print(f"tests: {tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped")
for n in tests["failed_tests"][:20]:
    print(f"  FAILED {n}")
print("steps: " + ", ".join(f"{s['name']} {s['rc']} ({s['seconds']}s)" for s in steps))
def num(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "-"
for f in figures:
    if "error" in f:
        print(f"  {f.get('name', '?'):<52} error: {f['error']}")
        continue
    print(f"  {f.get('name', '?'):<52} {num(f.get('value'), '10.2f')} {f.get('unit', ''):<8} "
          f"limit {num(f.get('limit'), '10.2f')}  {num(f.get('fraction'), '6.1%')}")
print("ok" if report["ok"] else "NOT ok")
EOF
echo "== gpu-check: $(($(date +%s) - t0))s; files in $out: $(ls "$out" | tr '\n' ' ')"
