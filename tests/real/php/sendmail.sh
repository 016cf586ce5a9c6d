#!/bin/sh
# sendmail_path of the real carts' PHP servers (tests only): each message becomes a file in $1.
exec cat > "$(mktemp "$1/mail.XXXXXXXX")"
