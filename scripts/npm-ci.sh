# Sourced by scripts/setup.sh and .ci/run: `npm_ci <args>` is `npm ci <args>`, tried up to three times.
# npm retries a failed request but not a response body that stalls (EIDLETIMEOUT from the registry, seen
# in a clean-clone run); the whole install runs again, from npm's cache.
npm_ci() {
  local attempt
  for attempt in 1 2 3; do
    npm ci "$@" && return 0
    echo "npm ci $* failed (attempt $attempt of 3)" >&2
    if ((attempt < 3)); then sleep $((attempt * 10)); fi
  done
  return 1
}
