#!/usr/bin/env bash
# Set up SonicVerse in ./.venv: system packages (Debian/Ubuntu, when root or sudo is available),
# a virtualenv, and the package with its extras.
#   scripts/setup.sh           engine + lite backend + UI + microphone (no torch: numpy, scipy,
#                              ONNX Runtime)
#   scripts/setup.sh --neural  + the sonicverse backend and training (torch pinned, transformers,
#                              peft, accelerate, bitsandbytes)
#   scripts/setup.sh --dev     everything, including test, docs and benchmark tools
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH="torch==2.13.0"  # pinned: an unpinned torch pulls several GB of CUDA wheels
extras="engine,ui,mic"
torch=""
apt_pkgs=(libsndfile1 libportaudio2 libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1
          libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0
          libxcb-randr0 libxcb-render-util0 libxcb-image0)
case "${1:-}" in
  "") ;;
  --neural) extras="engine,neural,train,ui,mic"; torch=$TORCH ;;
  --dev) extras="all"; torch=$TORCH ;;
  *) echo "usage: scripts/setup.sh [--neural | --dev]" >&2; exit 2 ;;
esac
if [[ "${1:-}" == "--dev" ]]; then
  # ardour: headless ardour7-lua runs the Ardour scripts end to end in the tests;
  # locales: those tests and the Lua JSON tests run again in de_DE.UTF-8 (a decimal comma);
  # Java: METEOR in sonicverse evaluate
  apt_pkgs+=(fluidsynth fluid-soundfont-gm espeak-ng sox xvfb lua5.4 lame ffmpeg ardour
            default-jre-headless locales)
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing system packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--dev" ]] && command -v locale-gen >/dev/null 2>&1 \
   && ! locale -a 2>/dev/null | grep -qi '^de_DE\.utf-\?8$'; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "generating the de_DE.UTF-8 locale (decimal-comma tests)" >&2
  $sudo sed -i 's/^# *\(de_DE\.UTF-8 UTF-8\)/\1/' /etc/locale.gen
  grep -q '^de_DE\.UTF-8 UTF-8' /etc/locale.gen || echo 'de_DE.UTF-8 UTF-8' | $sudo tee -a /etc/locale.gen >/dev/null
  $sudo locale-gen >/dev/null
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "SonicVerse needs Python >= 3.11 (set PYTHON=...)" >&2; exit 1; }
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
[[ -z "$torch" ]] || .venv/bin/python -m pip install -q "$torch"
.venv/bin/python -m pip install -q -e ".[${extras}]"
echo "ready: .venv (extras: ${extras})" >&2
