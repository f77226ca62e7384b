# Sourced by the prepared device scripts (gpu_check.sh, gpu_text_game.sh) from the repo root:
# installs carried wheels (.whl/*.whl, for packages the device image lacks) into /tmp/site, puts
# the repo on PYTHONPATH, keeps Hugging Face offline, and sets PY (the project's .venv python when
# there is one, else $PYTHON or python3).
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
