#!/usr/bin/env bash
# What only the tests need, beside scripts/deps.sh: for the packaging tests (tests/deploy.rs),
# Debian's docker-compose, whose `config` validates docker-compose.yml against the Compose
# schema; aiosmtpd, the real SMTP server the report tests send to (tests/support/smtp_sink.py),
# and poppler-utils, which reads their PDFs back (text, and pages as pictures);
# and kubernetes-validate (pinned, with the Kubernetes schemas bundled, so no network
# is needed) in a virtualenv at /opt/grender-tools.
set -euo pipefail

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
missing=()
for p in docker-compose python3-venv python3-aiosmtpd poppler-utils; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "Installing ${missing[*]} ..." >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubernetes-validate and its dependencies, pinned, for tests/deploy.rs.
tools=/opt/grender-tools
kv_pins=(kubernetes-validate==1.37.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0
  rpds-py==2026.9.1 attrs==26.1.0 PyYAML==6.0.4 packaging==26.4 importlib_resources==7.1.0 typing_extensions==4.16.0)
if [[ "$("$tools/bin/kubernetes-validate" --version 2>/dev/null)" != *1.37.0* ]]; then
  echo "Installing kubernetes-validate into $tools ..." >&2
  $sudo /usr/bin/python3 -m venv "$tools"
  $sudo "$tools/bin/pip" install -q --disable-pip-version-check "${kv_pins[@]}"
fi
