#!/bin/sh
# Container entrypoint for Alertmanager: writes the notification secrets from the environment
# into the files alertmanager.yml reads (api_url_file / routing_key_file), then starts
# Alertmanager. Use it as the entrypoint of the prom/alertmanager image, with
# /etc/alertmanager/secrets on a writable volume (tmpfs). Extra arguments go to alertmanager.
# When the files are mounted as secrets instead, this script only checks they are there.
# ALERTMANAGER_SECRETS_DIR and ALERTMANAGER_BIN exist for tests; alertmanager.yml expects the
# default directory.
set -eu

secrets_dir=${ALERTMANAGER_SECRETS_DIR:-/etc/alertmanager/secrets}
umask 077
mkdir -p "$secrets_dir"

write_secret() {
  # $1 file name, $2 environment variable name
  value=$(printenv "$2" || true)
  if [ -n "$value" ]; then
    printf '%s' "$value" > "$secrets_dir/$1"
  elif [ ! -s "$secrets_dir/$1" ]; then
    echo "alertmanager-entrypoint: $2 is not set and $secrets_dir/$1 is missing; notifications to that receiver will fail" >&2
  fi
}

write_secret chat-webhook-url PORTICO_ALERT_CHAT_WEBHOOK_URL
write_secret finance-webhook-url PORTICO_ALERT_FINANCE_WEBHOOK_URL
write_secret pagerduty-routing-key PORTICO_ALERT_PAGERDUTY_ROUTING_KEY

exec "${ALERTMANAGER_BIN:-/bin/alertmanager}" \
  --config.file=/etc/alertmanager/alertmanager.yml \
  --storage.path=/alertmanager \
  "$@"
