# Sourced by bin/hangar and .ci/run. Compiling the SQLite addon (no prebuilt binary can be downloaded
# on an offline host) needs Node's headers; node-gyp would fetch them from nodejs.org. The running
# node's own package usually ships them (Debian, NodeSource, nvm, the official tarball), so point
# the build there. An operator's own npm_config_nodedir or .npmrc `nodedir` wins.
use_local_node_headers() {
  local prefix
  prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  if [[ -z "${npm_config_nodedir:-}" && -f "$prefix/include/node/node.h" ]]; then
    export npm_config_nodedir="$prefix"
  fi
}
