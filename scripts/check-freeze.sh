#!/usr/bin/env bash
# Release gate for CI: exits 0 when Control Room says releases may ship, 1 when they are frozen,
# 2 when the freeze state cannot be read (fail closed). Used by .github/workflows/deploy.yml.
#   CONTROLROOM_URL   base URL of Control Room (required)
set -euo pipefail
: "${CONTROLROOM_URL:?set CONTROLROOM_URL to the base URL of Control Room}"
body=$(curl -fsS --max-time 10 "${CONTROLROOM_URL%/}/api/freeze") || { echo "cannot read ${CONTROLROOM_URL%/}/api/freeze" >&2; exit 2; }
printf '%s' "$body" | node -e '
  let raw = "";
  process.stdin.on("data", (c) => (raw += c)).on("end", () => {
    const s = JSON.parse(raw);
    if (s.frozen) { console.log(`Release FROZEN (${s.cause}): ${s.reason}`); process.exit(1); }
    console.log(`Release not frozen (${s.cause}): ${s.reason}`);
  });'
