#!/usr/bin/env bash
# System packages for audio rendering (FluidSynth + a General MIDI soundfont) and the
# headless-browser test of the comparison page (Chromium). Best effort: without root
# or apt-get, musicgen still works (it falls back to a built-in synth) and says so.
set -u
need=()
command -v fluidsynth >/dev/null 2>&1 || need+=(fluidsynth)
ls /usr/share/sounds/sf2/*.sf2 >/dev/null 2>&1 || need+=(fluid-soundfont-gm)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: could not install ${need[*]} (needs root and apt-get); audio falls back to the built-in synth" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "note: apt-get could not install ${need[*]}; audio falls back to the built-in synth" >&2
exit 0
