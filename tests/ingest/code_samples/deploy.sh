#!/usr/bin/env bash
# deploy.sh - build, upload and activate a release on the app servers.
set -euo pipefail

readonly RELEASE_DIR=/srv/app/releases
HOSTS=(web1 web2)

# Print a timestamped message to stderr.
log() {
    printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

die() { log "error: $*"; exit 1; }

# Build the release tarball and print its path.
function build_release {
    local version=$1
    local out="dist/app-${version}.tar.gz"
    make clean build >/dev/null
    tar -czf "$out" -C build .
    echo "$out"
}

function upload() {
    local tarball=$1 host=$2
    scp -q "$tarball" "deploy@${host}:${RELEASE_DIR}/" || die "upload to $host failed"
}

# Switch the current symlink and restart the service.
activate() {
    local host=$1 version=$2
    ssh "deploy@${host}" bash -s <<REMOTE
ln -sfn "${RELEASE_DIR}/app-${version}" /srv/app/current
systemctl restart app
REMOTE
}

rollback() {
    local host
    for host in "${HOSTS[@]}"; do
        ssh "deploy@${host}" 'ln -sfn "$(readlink /srv/app/previous)" /srv/app/current'
    done
}

usage() {
    cat <<'USAGE'
usage: deploy.sh VERSION
       deploy.sh --rollback
USAGE
}

main() {
    case "${1:-}" in
        --rollback) rollback ;;
        ""|-h|--help) usage ;;
        *)
            local tarball
            tarball=$(build_release "$1")
            for host in "${HOSTS[@]}"; do
                upload "$tarball" "$host"
                activate "$host" "$1"
            done
            log "deployed $1"
            ;;
    esac
}

main "$@"
