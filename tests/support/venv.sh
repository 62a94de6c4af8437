# Sourced by the run.sh of the Python test harnesses.
#
# python_venv DIR REQUIREMENTS: a venv in DIR with the pinned REQUIREMENTS installed,
# reused while the file is unchanged (pip's resolver alone costs seconds).
python_venv() {
  local venv="$1" requirements="$2"
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
  fi
  if ! cmp -s "$requirements" "$venv/.requirements.txt"; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/.requirements.txt"
  fi
}
