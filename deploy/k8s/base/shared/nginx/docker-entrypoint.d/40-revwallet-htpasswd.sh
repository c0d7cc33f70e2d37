#!/bin/sh
# Writes the basic-auth file for /grafana/ and /prometheus/ at container start, from the environment, so no
# password (or hash) is ever committed or baked into an image. The official nginx image runs every executable
# /docker-entrypoint.d/*.sh before nginx; a non-zero exit stops the container (fail closed: no file, no edge).
#
# Input (a *_FILE variable wins over the plain one, for Docker/Kubernetes secrets mounted as files):
#   ADMIN_USER     / ADMIN_USER_FILE       user name (default: admin)
#   ADMIN_PASSWORD / ADMIN_PASSWORD_FILE   password (required)
#   NGINX_CONF_DIR                         directory of nginx.conf (default /etc/nginx); the file is written to
#                                          $NGINX_CONF_DIR/conf.d/htpasswd, which the template names relative
#                                          to nginx.conf (`auth_basic_user_file conf.d/htpasswd`)
# The hash is SHA-512 crypt ($6$, salted), computed by openssl (Debian-based nginx images) or busybox's
# mkpasswd (Alpine-based ones); nginx checks it with the C library's crypt().
set -eu

me=40-revwallet-htpasswd

fail() {
    echo "$me: ERROR: $*" >&2
    exit 1
}

# Value of NAME, or the content of the file named by NAME_FILE (without its trailing newline).
read_setting() {
    name=$1
    eval "file=\${${name}_FILE:-}"
    if [ -n "$file" ]; then
        [ -r "$file" ] || fail "${name}_FILE=$file is not a readable file"
        # $(...) drops trailing newlines, as secret files usually end with one.
        value=$(cat "$file")
    else
        eval "value=\${${name}:-}"
    fi
    printf '%s' "$value"
}

user=$(read_setting ADMIN_USER)
password=$(read_setting ADMIN_PASSWORD)
user=${user:-admin}

[ -n "$password" ] || fail "ADMIN_PASSWORD (or ADMIN_PASSWORD_FILE) is not set: refusing to start the edge without admin credentials"
case $user in
    *:* | *"
"*) fail "ADMIN_USER must not contain ':' or a newline" ;;
esac
case $password in
    *"
"*) fail "ADMIN_PASSWORD must not contain a newline" ;;
esac

# The password goes through stdin, never the command line (where ps would show it).
if command -v openssl >/dev/null 2>&1; then
    hash=$(printf '%s\n' "$password" | openssl passwd -6 -stdin) || fail "openssl passwd failed"
elif command -v mkpasswd >/dev/null 2>&1; then
    hash=$(printf '%s\n' "$password" | mkpasswd -m sha512) || fail "mkpasswd failed"
else
    fail "neither openssl nor mkpasswd is available to hash the admin password"
fi
case $hash in
    "\$6\$"*) ;;
    *) fail "the password hash is not SHA-512 crypt" ;;
esac

conf_dir=${NGINX_CONF_DIR:-/etc/nginx}
target="$conf_dir/conf.d/htpasswd"
mkdir -p "$conf_dir/conf.d"

# Written to a temporary file and renamed, so nginx never reads a half-written file; readable only by root
# and the worker processes' group (nginx in the official image).
umask 077
tmp="$target.tmp.$$"
printf '%s:%s\n' "$user" "$hash" >"$tmp"
if grep -q '^nginx:' /etc/group 2>/dev/null && chgrp nginx "$tmp" 2>/dev/null; then
    chmod 0640 "$tmp"
else
    # No nginx group to share it with (e.g. a test running nginx outside the image): the workers run as
    # another user and must still read it.
    chmod 0644 "$tmp"
fi
mv -f "$tmp" "$target"

echo "$me: info: basic auth for user '$user' written to $target"
