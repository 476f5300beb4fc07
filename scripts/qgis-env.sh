# Sourced by scripts/qgis-process and the test suite: a private QGIS profile with this checkout
# enabled as plugin "inbetween", and .venv's site-packages visible to QGIS's Python.
_ib_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_ib_profile="$_ib_root/.qgis-profile"
mkdir -p "$_ib_profile/python/plugins" "$_ib_profile/config/profiles/default/QGIS"
ln -sfn "$_ib_root" "$_ib_profile/python/plugins/inbetween"
_ib_ini="$_ib_profile/config/profiles/default/QGIS/QGIS3.ini"
if ! grep -qs '^inbetween=true' "$_ib_ini"; then
  printf '[PythonPlugins]\ninbetween=true\n' > "$_ib_ini"
fi
export QGIS_CUSTOM_CONFIG_PATH="$_ib_profile/config"
export QGIS_PLUGINPATH="$_ib_profile/python/plugins"
_ib_site=$(echo "$_ib_root"/.venv/lib/python3*/site-packages)
export PYTHONPATH="$_ib_site${PYTHONPATH:+:$PYTHONPATH}"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
# Without a display or runtime dir, Qt warns on every start; give it a private one.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$_ib_profile/runtime}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
