#!/usr/bin/env bash
# Downloads, into .gpu-deps/ at the repository root, the Debian packages hymoe builds with that
# the lent GPU machines lack (they have nvcc, CMake and ninja but none of these, and no network):
# the -dev packages, the shared libraries they link against, and pkgconf. scripts/gpu-check.sh
# unpacks them there with `dpkg -x` into a prefix under /tmp. Runs on the developer's machine;
# needs apt but no root (`apt-get download` writes into the current folder). Idempotent: a
# package already in .gpu-deps/ is not fetched again. Also records the commit being checked in
# .gpu-deps/commit.txt, since the working tree travels to the GPU machine without .git.
#
#   scripts/gpu-deps.sh            (then: the device tool's run, carry [".gpu-deps"])
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.gpu-deps
mkdir -p "$dest"

# What CMake finds: find_package(fmt, spdlog, nlohmann_json, CLI11, GTest, benchmark) and
# pkg-config's libpcre2-8, libutf8proc, libedit.
dev_packages=(
    libfmt-dev libspdlog-dev nlohmann-json3-dev libcli11-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    libpcre2-dev libutf8proc-dev libedit-dev
)
# pkg-config itself, in case the GPU machine has none (gpu-check.sh uses it only then).
tool_packages=(pkgconf-bin libpkgconf3)
# Dependencies the GPU machine's base system certainly has, or that only the -dev packages'
# tooling wants (headers of other -dev packages we do not link, test frameworks, sources).
skip_re='^(libc6|libc-dev|libgcc-s1|libstdc\+\+6|googletest|catch2|.*-dev)$'

# The apt options for amd64 packages: the GPU machines are x86-64 whatever this machine is.
apt_opts=()
if [ "$(dpkg --print-architecture)" != amd64 ]; then
    lists=/tmp/hymoe-apt-amd64
    mkdir -p "$lists/partial"
    apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
    apt-get "${apt_opts[@]}" update -qq
fi

# The library packages the -dev packages need at link and run time: direct dependencies whose
# names start with lib, then theirs (libedit2 -> libbsd0 -> libmd0), until nothing new appears.
depends_of() {
    apt-cache "${apt_opts[@]}" depends --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "$1" 2>/dev/null |
        sed -n 's/^ *|\{0,1\}Depends: \([^ <>]*\).*/\1/p' | sed 's/:any$//' | grep '^lib' |
        grep -Ev "$skip_re" || true
}
declare -A seen=()
queue=("${dev_packages[@]}")
lib_packages=()
while [ ${#queue[@]} -gt 0 ]; do
    p="${queue[0]}"
    queue=("${queue[@]:1}")
    for d in $(depends_of "$p"); do
        if [ -z "${seen[$d]:-}" ]; then
            seen[$d]=1
            lib_packages+=("$d")
            queue+=("$d")
        fi
    done
done

all=("${dev_packages[@]}" "${lib_packages[@]}" "${tool_packages[@]}")
missing=()
for p in "${all[@]}"; do
    compgen -G "$dest/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "gpu-deps: downloading ${missing[*]}" >&2
    # (apt-get warns that its _apt user cannot write here when run as root; it downloads all the same.)
    (cd "$dest" && apt-get "${apt_opts[@]}" download "${missing[@]}")
fi

# Each file CMake or pkg-config will look for must be in one of the packages.
needed=(
    'lib/x86_64-linux-gnu/cmake/fmt/fmt-config.cmake'
    'lib/x86_64-linux-gnu/libfmt.so'
    'lib/x86_64-linux-gnu/cmake/spdlog/spdlogConfig.cmake'
    'lib/x86_64-linux-gnu/libspdlog.so'
    'share/cmake/nlohmann_json/nlohmann_jsonConfig.cmake'
    'share/cmake/CLI11/CLI11Config.cmake'
    'lib/x86_64-linux-gnu/cmake/GTest/GTestConfig.cmake'
    'lib/x86_64-linux-gnu/libgtest.a'
    'lib/x86_64-linux-gnu/libgtest_main.a'
    'lib/x86_64-linux-gnu/cmake/benchmark/benchmarkConfig.cmake'
    'lib/x86_64-linux-gnu/libbenchmark.so'
    'lib/x86_64-linux-gnu/pkgconfig/libpcre2-8.pc'
    'lib/x86_64-linux-gnu/pkgconfig/libutf8proc.pc'
    'lib/x86_64-linux-gnu/pkgconfig/libedit.pc'
    'lib/x86_64-linux-gnu/libedit.so'
    'bin/pkgconf'
)
listing=$(for f in "$dest"/*.deb; do dpkg-deb -c "$f"; done)
bad=0
for f in "${needed[@]}"; do
    if ! grep -q -- "/$f\( \|$\)" <<<"$listing"; then
        echo "gpu-deps: no package in $dest holds .../$f" >&2
        bad=1
    fi
done
[ "$bad" = 0 ] || exit 1

# The commit under test, for gpu-check.json (the device tool does not carry .git).
{
    echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "dirty $(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)"
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$dest/commit.txt"

echo "gpu-deps: $(ls "$dest"/*.deb | wc -l) packages, $(du -sh "$dest" | cut -f1) in $dest" >&2
