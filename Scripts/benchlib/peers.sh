#!/usr/bin/env bash
# Installs the benchmark and cross-check peers when missing (idempotent):
# Debian mrtrix3, hyperfine, libdeflate-tools, time, isal (igzip); a venv at $1 with dipy, nibabel,
# nilearn, numpy, scipy, pandas, statsmodels, and SimpleITK (the transform reference).
set -euo pipefail
venv="${1:?usage: peers.sh VENV}"
packages=(mrtrix3 hyperfine libdeflate-tools time isal)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "peers: installing ${missing[*]} (apt)" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { echo "peers: apt-get install ${missing[*]} failed" >&2; exit 1; }
fi
stamp="$venv/.peers-installed"
if [ ! -f "$stamp" ]; then
  echo "peers: creating $venv (dipy nibabel nilearn numpy scipy pandas)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check dipy nibabel nilearn numpy scipy pandas \
    || { echo "peers: pip install failed" >&2; exit 1; }
  touch "$stamp"
fi
if ! "$venv/bin/python" -c "import SimpleITK" 2>/dev/null; then
  echo "peers: installing SimpleITK into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check SimpleITK \
    || { echo "peers: pip install SimpleITK failed" >&2; exit 1; }
fi
# Added after the first peers: venvs made before it get it here.
if ! "$venv/bin/python" -c "import statsmodels" 2>/dev/null; then
  echo "peers: installing statsmodels into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check statsmodels \
    || { echo "peers: pip install statsmodels failed" >&2; exit 1; }
fi
