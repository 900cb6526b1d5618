# Shared helpers for the Ops/ scripts. Sourced, not executed.

say() { printf 'ember: %s\n' "$*" >&2; }
die() { printf 'ember: error: %s\n' "$*" >&2; exit 1; }

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# Where downloaded tools (tansu) live; outside the repo so clones share them.
tools_dir() { echo "${EMBER_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ember/tools}"; }

# Runtime state of local services (pid and log files).
state_dir() { echo "${EMBER_STATE_DIR:-$(repo_root)/.ember}"; }

# The Debian archive this machine already uses, from its own apt sources, so no
# registry host is written into the repository.
debian_mirror() {
  local uri
  uri="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE '(https?)://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')"
  echo "${uri%/}"
}

# Succeeds when something accepts TCP connections on host:port.
port_answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Swift lives in /opt/swift on the project's machines; make sure it is on PATH.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi

# `swift build` without the per-file progress lines; fails when the build fails.
quiet_build() {
  local log status
  log="$(mktemp)"
  set +e
  swift build "$@" >"$log" 2>&1
  status=$?
  set -e
  grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Linking|Write|Building)' "$log" | grep -vE '^(Building for|\[[0-9]+/[0-9]+\] Compiling plugin)' || true
  rm -f "$log"
  [ "$status" -eq 0 ] || die "swift build $* failed"
}
