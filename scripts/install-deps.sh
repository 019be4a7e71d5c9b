#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (run as root).
# Idempotent: anything already present is left alone.
set -euo pipefail

# SIPp (sip-tester) and baresip are real SIP peers of the SIP edge tests.
need_apt=(sip-tester baresip)
# Music on hold and announcements (8 kHz WAV): every media relay loads them at start and
# refuses to start without them (media/src/sound_library.rs lists the files used).
need_apt+=(asterisk-moh-opsound-wav asterisk-core-sounds-en-wav)
# The tz database: queues' opening hours (Q9) and daily logouts (A2) are local times.
need_apt+=(tzdata)
# curl is the HTTPS client of the TLS test (node/tests/tls.rs).
need_apt+=(curl)
for arg in "$@"; do
  case "$arg" in
    # The peers of benches/: etcd (raft_vs_etcd.sh), Kamailio (sip_vs_kamailio.sh,
    # with curl and jq), rtpengine (media_vs_rtpengine.sh).
    --bench) need_apt+=(etcd-server kamailio rtpengine-daemon curl jq) ;;
    *) echo "install-deps.sh: unknown argument $arg (known: --bench)" >&2; exit 2 ;;
  esac
done
if [ ${#need_apt[@]} -gt 0 ]; then
  missing=()
  for pkg in "${need_apt[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# aiosmtpd is the SMTP relay of the password-recovery test (node/tests/smtp_sink.py).
if ! python3 -c 'import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != "1.4.6")' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check 'aiosmtpd==1.4.6'
fi

# schemathesis fuzzes the admin API against its own OpenAPI document.
if ! command -v st >/dev/null 2>&1 || ! st --version 2>/dev/null | grep -q '4.32.5'; then
  python3 -m pip install -q --disable-pip-version-check 'schemathesis==4.32.5'
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
