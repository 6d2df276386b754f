# Shared by scripts/idle-cpu.sh and scripts/startup-time.sh (sourced, not run): the ssh
# masters of testbed $NAME's connections and an Xvfb of their own on :$DISPLAY_NO.

# The ssh masters of this testbed's connections (they name its ssh config).
masters() {
  local p
  for p in $(pgrep -x ssh || true); do
    tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "-M.*/$NAME/ssh_config" && echo "$p"
  done
  return 0
}

kill_masters() {
  local m
  m=$(masters)
  [ -z "$m" ] || kill $m 2>/dev/null || true
}

# Starts Xvfb on :$DISPLAY_NO (its pid in $xvfb) and points DISPLAY at it.
start_xvfb() {
  Xvfb ":$DISPLAY_NO" -screen 0 1280x1024x24 >/dev/null 2>&1 &
  xvfb=$!
  sleep 1
  export DISPLAY=":$DISPLAY_NO"
}
