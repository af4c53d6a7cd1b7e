#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager for the tests under tests/k8s.
#
# These machines reach only Debian, PyPI and npm, so the binaries are built from Debian's
# `kubernetes` *source* package (1.20.2, vendored dependencies) with Debian's own Go toolchain.
# See /work/shared/K8S-TESTING.md (or the README's Kubernetes section) for the background.
#
# Idempotent: exits 0 at once when the binaries are already in the cache directory.
#
# Environment:
#   TUNER_K8S_BIN    where the binaries go        (default: ~/.cache/tuner-k8s/bin)
#   TUNER_K8S_WORK   sources, apt state, GOCACHE  (default: ~/.cache/tuner-k8s/work)
#   TUNER_K8S_NICE   niceness of the Go build     (default: 10)
#
# Outputs: $TUNER_K8S_BIN/kube-apiserver, $TUNER_K8S_BIN/kube-controller-manager and
# $TUNER_K8S_BIN/etcd (a symlink to Debian's /usr/bin/etcd from etcd-server).
set -euo pipefail

BIN_DIR="${TUNER_K8S_BIN:-$HOME/.cache/tuner-k8s/bin}"
WORK_DIR="${TUNER_K8S_WORK:-$HOME/.cache/tuner-k8s/work}"
NICE="${TUNER_K8S_NICE:-10}"
K8S_VERSION="1.20.2"
ETCD=/usr/bin/etcd
TARGETS=(kube-apiserver kube-controller-manager)

log() { printf '[build-control-plane] %s\n' "$*"; }
die() { printf '[build-control-plane] ERROR: %s\n' "$*" >&2; exit 1; }

have_all() {
    local t
    for t in "${TARGETS[@]}"; do [[ -x "$BIN_DIR/$t" ]] || return 1; done
    [[ -x "$ETCD" ]]
}

link_etcd() {
    ln -sfn "$ETCD" "$BIN_DIR/etcd"
}

if have_all; then
    link_etcd
    log "binaries present in $BIN_DIR; nothing to do"
    exit 0
fi

START=$(date +%s)

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

# --- 1. Debian build dependencies -----------------------------------------------------------
NEEDED=(golang-go rsync jq etcd-server openssl make ca-certificates)
MISSING=()
for p in "${NEEDED[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || MISSING+=("$p")
done
if ((${#MISSING[@]})); then
    log "installing Debian packages: ${MISSING[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${MISSING[@]}"
fi
command -v go >/dev/null || die "go not found after installing golang-go"
[[ -x "$ETCD" ]] || die "$ETCD not found after installing etcd-server"
log "go: $(go version)"

mkdir -p "$BIN_DIR" "$WORK_DIR"
SRC_DIR="$WORK_DIR/kubernetes-$K8S_VERSION"

# --- 2. Source package through a private apt state (leaves /etc/apt untouched) ---------------
APT_DIR="$WORK_DIR/apt"
APT_OPTS=(
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d"
    -o "Dir::State::Lists=$APT_DIR/lists"
    -o "Dir::Cache=$APT_DIR/cache"
    -o "APT::Sandbox::User=root"
)
DL_DIR="$WORK_DIR/download"

if [[ ! -f "$SRC_DIR/.tuner-unpacked" ]]; then
    shopt -s nullglob
    ORIG=("$DL_DIR"/kubernetes_*"$K8S_VERSION".orig.tar.*)
    if ((${#ORIG[@]} == 0)); then
        log "preparing private apt state with deb-src entries in $APT_DIR"
        rm -rf "$APT_DIR"
        mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
        n=0
        for f in /etc/apt/sources.list.d/*.sources; do
            sed -E 's/^Types:[[:space:]]+deb[[:space:]]*$/Types: deb-src/' "$f" \
                >"$APT_DIR/sources.list.d/$(basename "$f")"
            n=$((n + 1))
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -f "$f" ]] || continue
            grep -E '^[[:space:]]*deb[[:space:]]' "$f" | sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' \
                >"$APT_DIR/sources.list.d/$(basename "$f" .list)-src.list" || true
            n=$((n + 1))
        done
        ((n > 0)) || die "no apt sources found under /etc/apt"
        log "apt-get update (private deb-src lists)"
        apt-get "${APT_OPTS[@]}" update -qq
        mkdir -p "$DL_DIR"
        # Debian versions it "1.20.5+really1.20.2-..." (a 1.20.2 tree), so do not pin it.
        log "apt-get source --download-only kubernetes"
        (cd "$DL_DIR" && apt-get "${APT_OPTS[@]}" source --download-only kubernetes)
        ORIG=("$DL_DIR"/kubernetes_*"$K8S_VERSION".orig.tar.*)
        ((${#ORIG[@]})) || die "no kubernetes_*$K8S_VERSION.orig.tar.* in $DL_DIR: $(ls "$DL_DIR")"
    fi
    shopt -u nullglob

    log "unpacking ${ORIG[0]##*/}"
    rm -rf "$SRC_DIR" "$WORK_DIR/unpack"
    mkdir -p "$WORK_DIR/unpack"
    tar -xf "${ORIG[0]}" -C "$WORK_DIR/unpack"
    top=("$WORK_DIR"/unpack/*)
    if ((${#top[@]} == 1)) && [[ -d "${top[0]}" ]]; then
        mv "${top[0]}" "$SRC_DIR"
        rmdir "$WORK_DIR/unpack"
    else
        mv "$WORK_DIR/unpack" "$SRC_DIR"
    fi
    [[ -f "$SRC_DIR/Makefile" && -d "$SRC_DIR/vendor" ]] || die "unexpected tarball layout in $SRC_DIR"

    # --- 3. Replace the vendored reflect2 1.0.1 (crashes under Go >= 1.18) with Debian's 1.0.2 --
    log "replacing vendor/github.com/modern-go/reflect2 with golang-github-modern-go-reflect2-dev"
    R2_DIR="$WORK_DIR/reflect2"
    rm -rf "$R2_DIR"
    mkdir -p "$R2_DIR"
    if ! (cd "$R2_DIR" && apt-get -o APT::Sandbox::User=root download -qq golang-github-modern-go-reflect2-dev); then
        as_root apt-get update -qq
        (cd "$R2_DIR" && apt-get -o APT::Sandbox::User=root download -qq golang-github-modern-go-reflect2-dev)
    fi
    dpkg -x "$R2_DIR"/golang-github-modern-go-reflect2-dev_*.deb "$R2_DIR/root"
    R2_SRC="$R2_DIR/root/usr/share/gocode/src/github.com/modern-go/reflect2"
    [[ -f "$R2_SRC/reflect2.go" ]] || die "reflect2 sources not found in the Debian package"
    VENDOR_R2="$SRC_DIR/vendor/github.com/modern-go/reflect2"
    cp "$VENDOR_R2/LICENSE" "$R2_DIR/LICENSE.vendored"
    rm -rf "$VENDOR_R2"
    mkdir -p "$VENDOR_R2"
    cp -a "$R2_SRC"/. "$VENDOR_R2"/
    [[ -f "$VENDOR_R2/LICENSE" ]] || cp "$R2_DIR/LICENSE.vendored" "$VENDOR_R2/LICENSE"
    # Drop test files and anything but Go sources + license (as in the vendored copy).
    find "$VENDOR_R2" -type f ! -name '*.go' ! -name '*.s' ! -name 'LICENSE' -delete
    find "$VENDOR_R2" -name '*_test.go' -delete
    touch "$SRC_DIR/.tuner-unpacked"
fi

# --- 4. Build (GOPATH mode through make; plain `go build` in module mode fails) ---------------
# hack/lib/golang.sh forces GOCACHE=_output/local/go/cache; point that at a cache kept outside the
# source tree so a re-unpacked tree still rebuilds in about a minute.
GOCACHE_DIR="$WORK_DIR/gocache"
mkdir -p "$GOCACHE_DIR" "$SRC_DIR/_output/local/go"
if [[ ! -L "$SRC_DIR/_output/local/go/cache" ]]; then
    rm -rf "$SRC_DIR/_output/local/go/cache"
    ln -s "$GOCACHE_DIR" "$SRC_DIR/_output/local/go/cache"
fi
log "building ${TARGETS[*]} (GOCACHE=$GOCACHE_DIR; ~7 min cold on 2 cores, ~1 min warm)"
# The orig tarball carries its version (export-subst in hack/lib/version.sh), so no git needed.
(
    cd "$SRC_DIR"
    nice -n "$NICE" env CGO_ENABLED=0 GOPROXY=off GOFLAGS= \
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
)

for t in "${TARGETS[@]}"; do
    out="$SRC_DIR/_output/bin/$t"
    [[ -x "$out" ]] || out=$(find "$SRC_DIR/_output" -type f -name "$t" -perm -u+x | head -n1)
    [[ -n "$out" && -x "$out" ]] || die "build finished but $t was not found under _output/"
    install -m 0755 "$out" "$BIN_DIR/$t.tmp"
    mv -f "$BIN_DIR/$t.tmp" "$BIN_DIR/$t"
done
link_etcd
"$BIN_DIR/kube-apiserver" --version || true
log "done in $(($(date +%s) - START)) s; binaries in $BIN_DIR"
