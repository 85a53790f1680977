#!/usr/bin/env bash
# Sets up the Python environment for the Hugging Face reference (tests/hf/make_reference.py).
# Idempotent; meant for Debian 12 (bookworm).
#
#   tools/setup-pyref.sh          -> venv in ${IRIS_PYREF:-<repo>/.venv-ref}
#
# torch: Debian's python3-torch (1.13, CPU) for /usr/bin/python3 (3.11). The venv is created with
# --system-site-packages so it sees that torch; pip never installs a PyPI torch (checked with a dry
# run before installing). transformers 4.44.2 is the newest 4.4x line that is known to work with
# torch 1.13 and already knows Llama 3 rope_scaling (rope_type "llama3", added in 4.43). Every
# package pip installs is pinned (versions of August 2024, contemporary with transformers 4.44.2).
#
# Steps: (1) install missing Debian packages with apt-get when root; otherwise print the exact
# apt-get line and exit 1. (2) create the venv (recreated when it is broken or was made without
# system site packages). (3) pip install the pins when the venv does not already hold them.
# (4) check: import torch, transformers, safetensors and build a LlamaConfig with llama3
# rope_scaling. Any failure exits non-zero. On success the last line printed is <venv>/bin/python
# (use it as -DIRIS_PYTHON=... for CMake).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${IRIS_PYREF:-$repo/.venv-ref}"
sys_python=/usr/bin/python3   # never a pyenv shim: Debian's torch lives in this interpreter's dist-packages

pins=(
  transformers==4.44.2
  safetensors==0.4.5
  tokenizers==0.19.1
  huggingface_hub==0.24.6
  fsspec==2024.6.1
  packaging==24.1
  regex==2024.7.24
  tqdm==4.66.5
  filelock==3.15.4
  accelerate==0.33.0
  psutil==5.9.8
  pyyaml==6.0.2
  # TensorBoard's own reader (EventAccumulator) checks the event files of output.tensorboard.
  tensorboard==2.17.1
  tensorboard-data-server==0.7.2
  protobuf==4.25.4
  absl-py==2.1.0
  grpcio==1.65.5
  markdown==3.6
  werkzeug==3.0.3
  markupsafe==2.1.5
  six==1.16.0
  # tiktoken (the Llama 3 tokenizer reference) and jinja2 (apply_chat_template).
  tiktoken==0.7.0
  requests==2.32.3
  charset-normalizer==3.3.2
  idna==3.7
  urllib3==2.2.2
  certifi==2024.7.4
  jinja2==3.1.4
  # iris-eval's references (tests/eval): sacrebleu and rouge-score for the text metrics, and the
  # dependencies of lm-evaluation-harness (installed below without its own requirements), pinned so pip
  # neither upgrades numpy under Debian's torch nor pulls anything newer than August 2024.
  sacrebleu==2.4.3
  rouge-score==0.1.2
  nltk==3.9.1
  datasets==2.21.0
  evaluate==0.4.2
  scikit-learn==1.5.1
  jsonlines==4.0.0
  numexpr==2.10.1
  pybind11==2.13.5
  pytablewriter==1.2.0
  sqlitedict==2.1.0
  tqdm-multiprocess==0.0.11
  zstandard==0.23.0
  dill==0.3.8
  word2number==1.1
  more-itertools==10.4.0
  pandas==2.2.2
  pyarrow==17.0.0
  scipy==1.13.1
  aiohttp==3.10.5
  joblib==1.4.2
  threadpoolctl==3.5.0
  click==8.1.7
  lxml==5.3.0
  portalocker==2.10.1
  xxhash==3.5.0
  multiprocess==0.70.16
  DataProperty==1.0.1
  mbstrdecoder==1.1.3
  pathvalidate==3.2.1
  tabledata==1.3.3
  tabulate==0.9.0
  tcolorpy==0.1.6
  typepy==1.3.2
  colorama==0.4.6
  aiohappyeyeballs==2.4.0
  aiosignal==1.3.1
  frozenlist==1.4.1
  multidict==6.0.5
  yarl==1.9.4
  pytz==2024.1
  tzdata==2024.1
  sentencepiece==0.2.0
)
# Installed with --no-deps: peft requires torch>=1.13.0, and Debian's torch calls itself 1.13.0a0, a
# pre-release pip ranks below 1.13.0, so it would fetch a PyPI torch. Its other requirements are in pins.
# llama-models ships Meta's Llama 3 tokenizer.model (llama_models/llama3/tokenizer.model), the reference
# for tests/tokenizer/; its own requirements (pydantic, Pillow, jinja2, ...) are not needed for that file.
# lm-eval (lm-evaluation-harness) requires torch>=1.8 the same way; its other requirements are in pins.
pins_nodeps=(
  peft==0.12.0
  llama-models==0.2.0
  lm-eval==0.4.3
)

log() { echo "setup-pyref: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- 1. Debian packages -------------------------------------------------------------------------
packages=(python3 python3-torch python3-venv python3-pip python3-numpy)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    log "run as root:  $line"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "Debian packages present: ${packages[*]}"
fi
[ -x "$sys_python" ] || die "$sys_python not found"
"$sys_python" -c 'import torch, numpy' || die "$sys_python cannot import Debian's torch/numpy"

# ---- 2. venv ------------------------------------------------------------------------------------
py="$venv/bin/python"
venv_ok() {
  [ -x "$py" ] && [ -f "$venv/pyvenv.cfg" ] &&
    grep -Eq '^include-system-site-packages *= *true' "$venv/pyvenv.cfg" &&
    "$py" -c 'import sys, torch; assert sys.version_info[:2] == (3, 11), sys.version' >/dev/null 2>&1
}
if ! venv_ok; then
  if [ -e "$venv" ]; then
    log "existing $venv is unusable (broken, wrong python, or no system site packages): recreating"
    rm -rf "$venv"
  fi
  log "creating venv $venv"
  "$sys_python" -m venv --system-site-packages "$venv"
  venv_ok || die "fresh venv $venv cannot import Debian's torch"
else
  log "venv $venv present"
fi

# ---- 3. pinned packages -------------------------------------------------------------------------
export PIP_DISABLE_PIP_VERSION_CHECK=1
pins_satisfied() {
  "$py" - "${pins[@]}" "${pins_nodeps[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
EOF
}
if pins_satisfied; then
  log "pinned packages already installed"
else
  report="$(mktemp)"
  trap 'rm -f "$report"' EXIT
  log "resolving ${pins[*]}"
  "$py" -m pip install --quiet --dry-run --report "$report" "${pins[@]}" ||
    die "pip could not resolve the pinned packages"
  # Refuse anything that would bring a PyPI torch (or CUDA wheels) next to Debian's torch.
  "$py" - "$report" <<'EOF' || die "pip wanted to install torch/CUDA packages; refusing"
import json, sys
names = [i["metadata"]["name"].lower() for i in json.load(open(sys.argv[1])).get("install", [])]
bad = [n for n in names if n in ("torch", "triton") or n.startswith("nvidia-")]
print("setup-pyref: pip will install:", " ".join(names) or "(nothing)", file=sys.stderr)
if bad:
    print("setup-pyref: unexpected packages:", " ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
  log "installing into $venv"
  "$py" -m pip install --quiet "${pins[@]}" || die "pip install failed"
  "$py" -m pip install --quiet --no-deps "${pins_nodeps[@]}" || die "pip install --no-deps ${pins_nodeps[*]} failed"
fi

# ---- 4. check -----------------------------------------------------------------------------------
"$py" - "$sys_python" <<'EOF' || die "check failed"
import os, sys
import torch, transformers, safetensors, safetensors.torch, safetensors.numpy, numpy, peft
from transformers import LlamaConfig, LlamaForCausalLM

# torch must be Debian's (system dist-packages), not a PyPI wheel inside the venv
assert torch.__file__.startswith("/usr/lib/python3/dist-packages/"), f"unexpected torch: {torch.__file__}"
assert torch.__version__.startswith("1.13"), torch.__version__

scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 8}
config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                     num_attention_heads=2, num_key_value_heads=1, rope_theta=500000.0,
                     rope_scaling=scaling, attn_implementation="eager")
assert config.rope_scaling["rope_type"] == "llama3", config.rope_scaling
model = LlamaForCausalLM(config)
logits = model(torch.zeros(1, 4, dtype=torch.long)).logits
assert logits.shape == (1, 4, 32) and torch.isfinite(logits).all()
print(f"setup-pyref: OK torch {torch.__version__} ({os.path.dirname(torch.__file__)}), "
      f"transformers {transformers.__version__}, safetensors {safetensors.__version__}, numpy {numpy.__version__}",
      file=sys.stderr)
EOF
echo "$py"
